module github.com/shoalmesh/shoal/registry-istio

go 1.26.0

require (
	github.com/shoalmesh/shoal/sdk v0.0.0-00010101000000-000000000000
	github.com/shoalmesh/shoal/triple v0.0.0-00010101000000-000000000000
)

replace (
	github.com/shoalmesh/shoal/sdk => ../sdk
	github.com/shoalmesh/shoal/triple => ../triple
)
