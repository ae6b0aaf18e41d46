package xdsclient_test

import (
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

// slowBackoffClient is a client whose backoff alone would wait up to a
// minute before its first retry, probing addr every probe.
func slowBackoffClient(t *testing.T, addr string, probe time.Duration) *xdsclient.Client {
	t.Helper()
	c, err := xdsclient.New(testConfig(addr),
		xdsclient.WithBackoff(time.Minute, time.Hour),
		xdsclient.WithReconnectProbe(0, probe),
		xdsclient.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A restarted istiod is found at once, however long the backoff has grown:
// while the next retry is far away the client probes the address, and
// retries as soon as it accepts connections again. Here the backoff alone
// would wait up to a minute (the old client: 48 to 72 s) before the change
// made while istiod was away could arrive.
func TestReconnectWhenIstiodAcceptsAgain(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(host, port, endpoints("10.1.0.1")...))
	c := slowBackoffClient(t, srv.Address(), 20*time.Millisecond)
	ew := newRecorder[*xdsresource.Endpoints]()
	defer c.WatchEndpoints(clusterName, ew)()
	ew.next(t)

	srv.Stop()
	if e := ew.next(t); e.kind != failed {
		t.Fatalf("event after istiod stopped = %+v, want the outage", e)
	}
	waitFor(t, "a refused probe", func() bool { return c.Status().RefusedProbes > 0 })
	if st := c.Status(); st.State != xdsclient.TransientFailure || time.Until(st.NextRetryAt) <= 0 {
		t.Fatalf("while istiod is away: state %v, next retry at %v", st.State, st.NextRetryAt)
	}
	srv.Set(xdstest.Service(host, port, endpoints("10.1.0.1", "10.1.0.2")...))
	srv.Restart()
	if got := addresses(ew.nextOf(t, changed).resource); !slices.Equal(got, []string{"10.1.0.1:20000", "10.1.0.2:20000"}) {
		t.Fatalf("endpoints after the restart = %v", got)
	}
	if st := c.Status(); st.State != xdsclient.Ready || st.Streams != 2 || st.RefusedProbes != 0 {
		t.Fatalf("after the restart: %+v", st)
	}
}

// An address that accepts connections but serves no ADS stream (a load
// balancer in front of nothing, an istiod refusing this client) is not
// dialled again and again: one probe finds it up, and the client waits for
// its backoff.
func TestNoProbingWhileTheAddressAccepts(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() { _ = lis.Close(); <-done })
	c := slowBackoffClient(t, lis.Addr().String(), 10*time.Millisecond)
	ew := newRecorder[*xdsresource.Endpoints]()
	defer c.WatchEndpoints(clusterName, ew)()
	if e := ew.next(t); e.kind != failed {
		t.Fatalf("event = %+v, want the stream failure", e)
	}
	// 50 probe intervals.
	time.Sleep(500 * time.Millisecond)
	// gRPC's own connection attempt(s), and a single probe.
	if n := accepted.Load(); n > 4 {
		t.Fatalf("%d connections in 500ms to an address that accepts them; probing did not stop", n)
	}
	if st := c.Status(); st.RefusedProbes != 0 || st.Streams != 0 {
		t.Fatalf("status %+v", st)
	}
}
