module github.com/shoalmesh/shoal/registry-istio

go 1.26.0

replace (
	github.com/shoalmesh/shoal/sdk => ../sdk
	github.com/shoalmesh/shoal/triple => ../triple
)
