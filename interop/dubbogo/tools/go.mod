module github.com/shoalmesh/shoal/interop/dubbogo/tools

go 1.26.0

tool (
	github.com/dubbogo/tools/cmd/protoc-gen-go-triple
	google.golang.org/protobuf/cmd/protoc-gen-go
)

require (
	github.com/dubbogo/tools v1.0.9 // indirect
	google.golang.org/protobuf v1.34.2 // indirect
)
