module github.com/shoalmesh/shoal/samples/go

go 1.26.0

replace (
	github.com/shoalmesh/shoal/localmesh => ../../localmesh
	github.com/shoalmesh/shoal/registry-istio => ../../registry-istio
	github.com/shoalmesh/shoal/router-mesh => ../../router-mesh
	github.com/shoalmesh/shoal/sdk => ../../sdk
	github.com/shoalmesh/shoal/triple => ../../triple
)
