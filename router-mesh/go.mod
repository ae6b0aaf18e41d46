module github.com/shoalmesh/shoal/router-mesh

go 1.26.0

replace (
	github.com/shoalmesh/shoal/sdk => ../sdk
	github.com/shoalmesh/shoal/triple => ../triple
)
