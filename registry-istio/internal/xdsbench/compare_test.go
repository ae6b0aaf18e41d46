package xdsbench_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/xds"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/registry"
)

const (
	services     = 1000
	endpointsPer = 10
	shoalNode    = "sidecar~127.0.0.2~shoal-bench.default~default.svc.cluster.local"
	grpcNode     = "sidecar~127.0.0.3~grpcgo-bench.default~default.svc.cluster.local"
)

// state is the scale input with ring-hash clusters (small rings): grpc-go's
// ring_hash policy creates subchannels without connecting them, so neither
// client opens connections and the comparison is about xDS handling.
func state(gen int) xdstest.Resources {
	r := xdstest.ManyServices(services, endpointsPer, gen)
	for _, c := range r.Clusters {
		xdstest.WithRingHash(c, 16)
		c.GetRingHashLbConfig().MaximumRingSize = nil
	}
	return r
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func target(i int) string {
	return fmt.Sprintf("xds:///%s:%d", xdstest.ScaleHost(i), xdstest.ScalePort)
}

// nodeStreams returns the ADS streams opened by the client with node id
// (grpc-go opens one per channel target; Shoal one in all).
func nodeStreams(srv *xdstest.Server, node string) map[int64]bool {
	out := map[int64]bool{}
	for _, r := range srv.Requests() {
		if r.Node.GetId() == node {
			out[r.Stream] = true
		}
	}
	return out
}

// waitACK waits until the client's streams have, together, ACKed version of
// type t for every service. Only requests from index from on are looked at;
// streams, when nil, are learned from the requests' node.
func waitACK(b *testing.B, srv *xdstest.Server, from int, node string, streams map[int64]bool, version string, t xdsresource.Type) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	learn := streams == nil
	if learn {
		streams = map[int64]bool{}
	}
	acked := map[int64]int{}
	total := 0
	_, err := srv.WaitForNewRequest(ctx, from, func(r xdstest.Request) bool {
		if learn && r.Node.GetId() == node {
			streams[r.Stream] = true
		}
		if streams[r.Stream] && r.TypeURL == t.URL() && r.VersionInfo == version && r.ResponseNonce != "" && !r.IsNACK() {
			if n := len(r.ResourceNames); n > acked[r.Stream] {
				total += n - acked[r.Stream]
				acked[r.Stream] = n
			}
		}
		return total >= services
	})
	if err != nil {
		b.Fatalf("%s: %d of %d %s resources ACKed at version %s: %v", node, total, services, t, version, err)
	}
}

type client interface {
	close()
}

type shoalClient struct {
	c        *xdsclient.Client
	watchers []registry.Watcher
}

func (s *shoalClient) close() {
	for _, w := range s.watchers {
		_ = w.Close()
	}
	_ = s.c.Close()
}

type grpcClient struct{ conns []*grpc.ClientConn }

func (g *grpcClient) close() {
	for _, cc := range g.conns {
		_ = cc.Close()
	}
}

func startShoal(b *testing.B, addr string) client {
	cfg := &bootstrap.Config{ServerURI: addr, Node: bootstrap.Node{ID: shoalNode, Metadata: map[string]any{"GENERATOR": "grpc"}}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := xdsclient.New(cfg, xdsclient.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	d := xdsmesh.NewDiscovery(c, xdsmesh.WithLogger(quiet))
	s := &shoalClient{c: c}
	for i := range services {
		w, err := d.Watch(context.Background(), registry.Key{Interface: target(i)})
		if err != nil {
			b.Fatal(err)
		}
		s.watchers = append(s.watchers, w)
	}
	return s
}

func startGRPC(b *testing.B, addr string) client {
	bootstrapJSON := fmt.Sprintf(`{
		"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": %q, "metadata": {"GENERATOR": "grpc"}}
	}`, addr, grpcNode)
	builder, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrapJSON))
	if err != nil {
		b.Fatal(err)
	}
	g := &grpcClient{}
	for i := range services {
		cc, err := grpc.NewClient(target(i), grpc.WithResolvers(builder), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		cc.Connect()
		g.conns = append(g.conns, cc)
	}
	return g
}

// BenchmarkCompare1000x10 runs the same input through Shoal (xdsclient and
// xdsmesh snapshots for 1,000 xds:/// targets) and grpc-go (1,000 xds:///
// ClientConns on one xDS client). ns/op is the time from the server's push of
// a full update (1,000 clusters and 1,000 endpoint sets changed) until the
// client has ACKed the new CDS and EDS versions, i.e. validated and cached
// them. initial-ms is the time from creating the client until it ACKed the
// first full state; heap-MiB is the heap growth the client causes, after GC.
func BenchmarkCompare1000x10(b *testing.B) {
	for _, tc := range []struct {
		name  string
		node  string
		start func(*testing.B, string) client
	}{
		{"shoal", shoalNode, startShoal},
		{"grpc-go", grpcNode, startGRPC},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := xdstest.NewServer(b)
			updates := make([]xdstest.Resources, b.N+1)
			for i := range updates {
				updates[i] = state(i)
			}
			v0 := srv.Set(updates[0])
			before := heap()
			start := time.Now()
			c := tc.start(b, srv.Address())
			defer c.close()
			waitACK(b, srv, 0, tc.node, nil, v0, xdsresource.EndpointsType)
			initial := time.Since(start)
			streams := nodeStreams(srv, tc.node)
			grown := float64(heap()-before) / (1 << 20)
			b.ResetTimer()
			for i := 1; i <= b.N; i++ {
				n := len(srv.Requests())
				v := srv.Set(updates[i])
				waitACK(b, srv, n, tc.node, streams, v, xdsresource.ClusterType)
				waitACK(b, srv, n, tc.node, streams, v, xdsresource.EndpointsType)
			}
			b.StopTimer()
			b.ReportMetric(float64(initial.Milliseconds()), "initial-ms")
			b.ReportMetric(grown, "heap-MiB")
			b.ReportMetric(float64(len(streams)), "ads-streams")
		})
	}
}
