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
	github.com/shoalmesh/shoal/registry-istio v0.1.0
	github.com/shoalmesh/shoal/sdk v0.1.0
	github.com/shoalmesh/shoal/triple v0.1.0
	go.uber.org/goleak v1.3.0
	google.golang.org/grpc v1.85.0
)

require (
	github.com/cncf/xds/go v0.0.0-20260202195803-dba9d589def2 // indirect
	github.com/envoyproxy/go-control-plane/envoy v1.40.0 // indirect
	github.com/envoyproxy/protoc-gen-validate v1.3.3 // indirect
	github.com/golang/protobuf v1.5.4 // indirect
	github.com/planetscale/vtprotobuf v0.6.1-0.20240319094008-0393e58bdf10 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261026165753-2ffab32bce7e // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	istio.io/api v1.31.1 // indirect
)
