package xdsclient

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

func responses(b *testing.B, r xdstest.Resources, version string) []*discoveryv3.DiscoveryResponse {
	b.Helper()
	pack := func(t xdsresource.Type, msgs []proto.Message) *discoveryv3.DiscoveryResponse {
		resp := &discoveryv3.DiscoveryResponse{TypeUrl: t.URL(), VersionInfo: version, Nonce: version + t.String()}
		for _, m := range msgs {
			// Deterministic, as go-control-plane and istiod's caches send
			// unchanged resources byte for byte.
			a := &anypb.Any{}
			err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true})
			if err != nil {
				b.Fatal(err)
			}
			resp.Resources = append(resp.Resources, a)
		}
		return resp
	}
	return []*discoveryv3.DiscoveryResponse{
		pack(xdsresource.ListenerType, toMessages(r.Listeners)),
		pack(xdsresource.RouteConfigType, toMessages(r.Routes)),
		pack(xdsresource.ClusterType, toMessages(r.Clusters)),
		pack(xdsresource.EndpointsType, toMessages(r.Endpoints)),
	}
}

func toMessages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkApplyFullUpdate1000x10 measures the client alone: validating and
// applying a full state of 1,000 services x 10 endpoints (four responses,
// 4,000 resources, all watched) already received from the wire, and the
// heap the client keeps for that state (cache-MiB). The management server,
// the network and protobuf wire decoding of the DiscoveryResponse are left
// out; the resources' own decoding and validation are included.
func BenchmarkApplyFullUpdate1000x10(b *testing.B) {
	gens := make([][]*discoveryv3.DiscoveryResponse, 2)
	for g := range gens {
		gens[g] = responses(b, xdstest.ManyServices(1000, 10, g), string(rune('a'+g)))
	}
	benchApply(b, gens)
}

// BenchmarkApplyOneChange1000x10 is the common istiod push: the same state
// of the world is sent again with one service's endpoints changed.
func BenchmarkApplyOneChange1000x10(b *testing.B) {
	gens := make([][]*discoveryv3.DiscoveryResponse, 2)
	for g := range gens {
		r := xdstest.ManyServices(1000, 10, 0)
		one := xdstest.ManyServices(1, 10, g)
		r.Endpoints[0], r.Clusters[0] = one.Endpoints[0], one.Clusters[0]
		gens[g] = responses(b, r, string(rune('a'+g)))
	}
	benchApply(b, gens)
}

func benchApply(b *testing.B, gens [][]*discoveryv3.DiscoveryResponse) {
	const services = 1000
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := &bootstrap.Config{
		// Nothing listens there: the stream keeps failing quietly, and the
		// benchmark feeds responses directly.
		ServerURI: "127.0.0.1:1",
		Node:      bootstrap.Identity{PodName: "bench", Namespace: "default", IPs: []string{"10.0.0.1"}}.Node(),
	}
	before := heapAlloc()
	c, err := New(cfg, WithLogger(quiet), WithBackoff(time.Minute, time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	nop := func(xdsresource.Resource) {}
	for s := range services {
		h := xdstest.ScaleHost(s)
		for t, name := range map[xdsresource.Type]string{
			xdsresource.ListenerType:    xdstest.ListenerName(h, xdstest.ScalePort),
			xdsresource.RouteConfigType: xdstest.RouteName(h, xdstest.ScalePort),
			xdsresource.ClusterType:     xdstest.ClusterName(h, "", xdstest.ScalePort),
			xdsresource.EndpointsType:   xdstest.ClusterName(h, "", xdstest.ScalePort),
		} {
			defer c.watch(t, name, &watcher{changed: nop, err: func(error) {}, notFound: func() {}})()
		}
	}
	for _, resp := range gens[0] {
		c.handleResponse(resp)
	}
	cache := float64(heapAlloc()-before) / (1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for _, resp := range gens[(i+1)%2] {
			c.handleResponse(resp)
		}
	}
	b.StopTimer()
	for _, ts := range c.types {
		for _, rs := range ts.resources {
			if rs.state != StateACKed || rs.resource == nil {
				b.Fatalf("%v %s not applied: %v %s", ts.typ, rs.name, rs.state, rs.err)
			}
		}
	}
	b.ReportMetric(cache, "cache-MiB")
}
