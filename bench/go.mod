module github.com/shoalmesh/shoal/bench

go 1.26.0

replace (
	github.com/shoalmesh/shoal/localmesh => ../localmesh
	github.com/shoalmesh/shoal/registry-istio => ../registry-istio
	github.com/shoalmesh/shoal/router-mesh => ../router-mesh
	github.com/shoalmesh/shoal/sdk => ../sdk
	github.com/shoalmesh/shoal/triple => ../triple
)

replace github.com/shoalmesh/shoal/proto => ../proto

require (
	github.com/shoalmesh/shoal/proto v0.0.0-00010101000000-000000000000
	github.com/shoalmesh/shoal/triple v0.1.0
	go.uber.org/goleak v1.3.0
	google.golang.org/grpc v1.85.0
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261026165753-2ffab32bce7e // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
