module github.com/shoalmesh/shoal/samples/go

go 1.26.0

replace (
	github.com/shoalmesh/shoal/localmesh => ../../localmesh
	github.com/shoalmesh/shoal/proto => ../../proto
	github.com/shoalmesh/shoal/registry-istio => ../../registry-istio
	github.com/shoalmesh/shoal/router-mesh => ../../router-mesh
	github.com/shoalmesh/shoal/sdk => ../../sdk
	github.com/shoalmesh/shoal/triple => ../../triple
)

require (
	github.com/shoalmesh/shoal/proto v0.0.0-00010101000000-000000000000
	github.com/shoalmesh/shoal/sdk v0.1.0
	github.com/shoalmesh/shoal/triple v0.1.0
)

require (
	github.com/fsnotify/fsnotify v1.9.0 // indirect
	github.com/kr/text v0.2.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261026165753-2ffab32bce7e // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
