package xdsmesh_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// FuzzTranslate feeds arbitrary bytes as a RouteConfiguration. Whatever
// xdsresource accepts must translate into a spec the mesh model accepts, or
// be refused by Translate with an error; nothing may panic.
func FuzzTranslate(f *testing.F) {
	c1, c2 := xdstest.ClusterName(host, "v1", port), xdstest.ClusterName(host, "v2", port)
	seeds := []proto.Message{
		xdstest.RouteConfig(host, port),
		xdstest.RouteConfig(host, port,
			xdstest.WithFault(xdstest.WithTimeout(xdstest.WeightedRoute("split", xdstest.HeaderMatch("/greet.", map[string]string{"x": "y"}),
				xdstest.WeightedCluster{Name: c1, Weight: 80}, xdstest.WeightedCluster{Name: c2, Weight: 20}), time.Second),
				time.Millisecond, 10, 14, 5)),
	}
	for _, m := range seeds {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	clusters := map[string]*xdsresource.Cluster{}
	for _, n := range []string{c1, c2, xdstest.ClusterName(host, "", port)} {
		clusters[n] = &xdsresource.Cluster{Name: n, EDSServiceName: n, MaxRequests: 1024}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, r, err := xdsresource.Unmarshal(xdsresource.RouteConfigType, &anypb.Any{TypeUrl: xdsresource.RouteConfigURL, Value: b})
		if err != nil {
			return
		}
		spec, err := xdsmesh.Translate(xdsmesh.Input{Target: target, Routes: r.(*xdsresource.RouteConfig), Clusters: clusters})
		if err != nil {
			return
		}
		if _, err := mesh.NewSnapshot(spec); err != nil {
			t.Fatalf("Translate produced a spec the mesh model rejects: %v", err)
		}
	})
}
