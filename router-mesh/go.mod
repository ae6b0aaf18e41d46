module github.com/shoalmesh/shoal/router-mesh

go 1.26.0

require github.com/shoalmesh/shoal/sdk v0.1.0

require go.uber.org/goleak v1.3.0

require (
	github.com/stretchr/testify v1.12.1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
