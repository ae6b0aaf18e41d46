package xdsclient_test

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

type counter struct {
	n      atomic.Int64
	target atomic.Int64
	done   chan struct{}
}

func (c *counter) hit() {
	if c.n.Add(1) == c.target.Load() {
		c.done <- struct{}{}
	}
}

func (c *counter) expect(n int64) {
	c.target.Store(c.n.Load() + n)
}

func (c *counter) wait(b *testing.B) {
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("update not applied: %d of %d watcher calls", c.n.Load(), c.target.Load())
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkFullUpdate1000x10 measures the time from a management server
// push of a full new state (1,000 services x 10 endpoints: 1,000 LDS, RDS
// and CDS resources and 1,000 ClusterLoadAssignments, all watched) until every
// cluster and endpoints watcher has the new version. It reports the heap the
// client retains for that state (client-heap-MiB, measured as the growth of
// the process heap after GC, server included in neither side of the delta
// beyond its per-stream bookkeeping).
func BenchmarkFullUpdate1000x10(b *testing.B) {
	const services, endpointsPer = 1000, 10
	srv := xdstest.NewServer(b)
	srv.Set(xdstest.ManyServices(services, endpointsPer, 0))
	before := heapInUse()

	c, err := xdsclient.New(testConfig(srv.Address()), xdsclient.WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cnt := &counter{done: make(chan struct{}, 1)}
	cnt.expect(4 * services)
	start := time.Now()
	for s := range services {
		h := xdstest.ScaleHost(s)
		onL := xdsclient.WatcherFuncs[*xdsresource.Listener]{OnChanged: func(*xdsresource.Listener) { cnt.hit() }}
		onR := xdsclient.WatcherFuncs[*xdsresource.RouteConfig]{OnChanged: func(*xdsresource.RouteConfig) { cnt.hit() }}
		onC := xdsclient.WatcherFuncs[*xdsresource.Cluster]{OnChanged: func(*xdsresource.Cluster) { cnt.hit() }}
		onE := xdsclient.WatcherFuncs[*xdsresource.Endpoints]{OnChanged: func(*xdsresource.Endpoints) { cnt.hit() }}
		defer c.WatchListener(xdstest.ListenerName(h, xdstest.ScalePort), onL)()
		defer c.WatchRouteConfig(xdstest.RouteName(h, xdstest.ScalePort), onR)()
		defer c.WatchCluster(xdstest.ClusterName(h, "", xdstest.ScalePort), onC)()
		defer c.WatchEndpoints(xdstest.ClusterName(h, "", xdstest.ScalePort), onE)()
	}
	cnt.wait(b)
	initial := time.Since(start)
	retained := float64(heapInUse()-before) / (1 << 20)

	updates := make([]xdstest.Resources, b.N)
	for i := range updates {
		updates[i] = xdstest.ManyServices(services, endpointsPer, i+1)
	}
	b.ResetTimer()
	for i := range b.N {
		cnt.expect(2 * services) // clusters and endpoints change; listeners and routes do not
		srv.Set(updates[i])
		cnt.wait(b)
	}
	b.StopTimer()
	b.ReportMetric(float64(initial.Milliseconds()), "initial-ms")
	b.ReportMetric(retained, "heap-MiB")
}
