package xdsclient_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

const (
	host = "greeter.default.svc.cluster.local"
	port = 20000
)

var (
	listenerName = xdstest.ListenerName(host, port)
	routeName    = xdstest.RouteName(host, port)
	clusterName  = xdstest.ClusterName(host, "", port)
)

func endpoints(ips ...string) []xdstest.Endpoint {
	out := make([]xdstest.Endpoint, len(ips))
	for i, ip := range ips {
		out[i] = xdstest.Endpoint{IP: ip, Port: port, Locality: xdstest.Locality{Region: "r1", Zone: "z1"}}
	}
	return out
}

func addresses(e *xdsresource.Endpoints) []string {
	var out []string
	for _, l := range e.Localities {
		for _, ep := range l.Endpoints {
			out = append(out, ep.Address)
		}
	}
	slices.Sort(out)
	return out
}

// The client asks for nothing until something is watched, then exactly for
// what is watched, following the chain LDS -> RDS -> CDS -> EDS.
func TestLazyWatchesFollowTheChain(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(host, port, endpoints("10.1.0.1")...).Merge(xdstest.Service("other.default.svc.cluster.local", 80)))
	c := newClient(t, srv)

	// Nothing watched: no connection at all.
	time.Sleep(50 * time.Millisecond)
	if n, st := srv.OpenStreams(), c.Status().State; n != 0 || st != xdsclient.Idle || len(srv.Requests()) != 0 {
		t.Fatalf("before any watch: %d streams, state %v, requests %+v", n, st, srv.Requests())
	}

	lw := newRecorder[*xdsresource.Listener]()
	cancelL := c.WatchListener(listenerName, lw)
	defer cancelL()
	req := waitRequest(t, srv, 0, isType(xdsresource.ListenerType))
	if !slices.Equal(req.ResourceNames, []string{listenerName}) {
		t.Fatalf("LDS names = %v, want [%s]", req.ResourceNames, listenerName)
	}
	if req.Node == nil || !strings.HasPrefix(req.Node.GetId(), "sidecar~10.0.0.7~consumer-0.default~") ||
		req.Node.GetMetadata().GetFields()["GENERATOR"].GetStringValue() != "grpc" {
		t.Fatalf("first request node = %v, want a proxyless sidecar node with GENERATOR=grpc", req.Node)
	}
	l := lw.next(t)
	if l.kind != changed || l.resource.RouteConfigName != routeName || !l.resource.FaultFilter {
		t.Fatalf("listener event = %+v, want route %s with the fault filter", l, routeName)
	}

	rw := newRecorder[*xdsresource.RouteConfig]()
	cancelR := c.WatchRouteConfig(l.resource.RouteConfigName, rw)
	rc := rw.next(t).resource
	route := rc.VirtualHosts[0].Routes[0]
	if route.WeightedClusters[0].Name != clusterName || route.RetryPolicy == nil || route.RetryPolicy.NumRetries != 2 {
		t.Fatalf("route = %+v, want cluster %s with 2 retries", route, clusterName)
	}

	cw := newRecorder[*xdsresource.Cluster]()
	cancelC := c.WatchCluster(clusterName, cw)
	defer cancelC()
	cl := cw.next(t).resource
	ew := newRecorder[*xdsresource.Endpoints]()
	cancelE := c.WatchEndpoints(cl.EDSServiceName, ew)
	defer cancelE()
	if got := addresses(ew.next(t).resource); !slices.Equal(got, []string{"10.1.0.1:20000"}) {
		t.Fatalf("endpoints = %v", got)
	}
	for _, r := range srv.Requests() {
		for _, n := range r.ResourceNames {
			if strings.Contains(n, "other.default") {
				t.Fatalf("the client asked for an unwatched resource: %+v", r)
			}
		}
	}

	// Leaving the last route watch unsubscribes RDS with an empty list.
	n := len(srv.Requests())
	cancelR()
	waitRequest(t, srv, n, func(r xdstest.Request) bool {
		return r.TypeURL == xdsresource.RouteConfigURL && len(r.ResourceNames) == 0
	})
}

// Every response is ACKed with its version and nonce.
func TestACKCarriesVersionAndNonce(t *testing.T) {
	srv := xdstest.NewServer(t)
	v1 := srv.Set(xdstest.Service(host, port, endpoints("10.1.0.1")...))
	c := newClient(t, srv)
	cw := newRecorder[*xdsresource.Cluster]()
	defer c.WatchCluster(clusterName, cw)()
	cw.next(t)
	ack := waitRequest(t, srv, 0, func(r xdstest.Request) bool {
		return r.TypeURL == xdsresource.ClusterURL && r.ResponseNonce != ""
	})
	if ack.VersionInfo != v1 || ack.IsNACK() {
		t.Fatalf("ACK = %+v, want version %s and no error", ack, v1)
	}
	ts := typeStatus(c, xdsresource.ClusterType)
	if ts.Version != v1 || ts.Nonce != ack.ResponseNonce || ts.LastError != "" {
		t.Fatalf("status = %+v, want version %s nonce %s", ts, v1, ack.ResponseNonce)
	}

	n := len(srv.Requests())
	v2 := srv.Set(xdstest.Service(host, port, endpoints("10.1.0.2")...))
	ack2 := waitRequest(t, srv, n, func(r xdstest.Request) bool {
		return r.TypeURL == xdsresource.ClusterURL && r.VersionInfo == v2
	})
	if ack2.ResponseNonce == ack.ResponseNonce || ack2.IsNACK() {
		t.Fatalf("second ACK = %+v, want a new nonce and no error", ack2)
	}
	// The cluster did not change, so its watcher hears nothing.
	cw.none(t, 50*time.Millisecond)
}

// An invalid cluster is NACKed with a precise error, the previous version of
// it stays in use, a valid cluster in the same response is applied, and the
// next valid version is accepted.
func TestNACKKeepsLastGood(t *testing.T) {
	srv := xdstest.NewServer(t)
	good := xdstest.Service(host, port, endpoints("10.1.0.1")...)
	const otherHost = "other.default.svc.cluster.local"
	other := xdstest.Service(otherHost, 80)
	v1 := srv.Set(good.Merge(other))
	c := newClient(t, srv)
	cw := newRecorder[*xdsresource.Cluster]()
	defer c.WatchCluster(clusterName, cw)()
	ow := newRecorder[*xdsresource.Cluster]()
	defer c.WatchCluster(xdstest.ClusterName(otherHost, "", 80), ow)()
	if got := cw.next(t).resource.LBPolicy; got != xdsresource.LBRoundRobin {
		t.Fatalf("lb = %v", got)
	}
	ow.next(t)

	bad := xdstest.Cluster(host, "", port)
	bad.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	otherV2 := xdstest.WithMaxRequests(xdstest.Cluster(otherHost, "", 80), 7)
	n := len(srv.Requests())
	v2 := srv.Set(xdstest.Resources{Clusters: []*clusterv3.Cluster{bad, otherV2}})

	nack := waitRequest(t, srv, n, func(r xdstest.Request) bool { return r.TypeURL == xdsresource.ClusterURL && r.IsNACK() })
	if nack.VersionInfo != v1 {
		t.Fatalf("NACK version = %q, want the last good %q", nack.VersionInfo, v1)
	}
	for _, want := range []string{"version " + v2, clusterName, "lb_policy CLUSTER_PROVIDED is not supported"} {
		if !strings.Contains(nack.ErrorDetail, want) {
			t.Fatalf("NACK detail %q does not mention %q", nack.ErrorDetail, want)
		}
	}
	if e := cw.next(t); e.kind != failed || !strings.Contains(e.err.Error(), "CLUSTER_PROVIDED") {
		t.Fatalf("watcher event = %+v, want the validation error", e)
	}
	if got := ow.next(t).resource.MaxRequests; got != 7 {
		t.Fatalf("valid cluster in the NACKed response: max requests %d, want 7", got)
	}
	ts := typeStatus(c, xdsresource.ClusterType)
	var rs xdsclient.ResourceStatus
	for _, r := range ts.Resources {
		if r.Name == clusterName {
			rs = r
		}
	}
	if rs.State != xdsclient.StateNACKed || rs.Resource == nil || rs.Resource.(*xdsresource.Cluster).LBPolicy != xdsresource.LBRoundRobin {
		t.Fatalf("resource status = %+v, want NACKED with the round-robin version kept", rs)
	}
	if ts.Version != v1 || ts.LastNACKVersion != v2 || !strings.Contains(ts.LastError, "CLUSTER_PROVIDED") {
		t.Fatalf("type status = %+v", ts)
	}
	// The server does not resend the rejected version (as istiod): no loop.
	time.Sleep(100 * time.Millisecond)
	nacks := 0
	for _, r := range srv.Requests()[n:] {
		if r.IsNACK() {
			nacks++
		}
	}
	if nacks != 1 {
		t.Fatalf("%d NACKs, want 1", nacks)
	}

	n = len(srv.Requests())
	v3 := srv.Set(xdstest.Resources{Clusters: []*clusterv3.Cluster{xdstest.WithRingHash(xdstest.Cluster(host, "", port), 64), otherV2}})
	if e := cw.next(t); e.kind != changed || e.resource.LBPolicy != xdsresource.LBRingHash || e.resource.RingHash.MinRingSize != 64 {
		t.Fatalf("event after the fix = %+v", e)
	}
	waitRequest(t, srv, n, func(r xdstest.Request) bool {
		return r.TypeURL == xdsresource.ClusterURL && r.VersionInfo == v3 && !r.IsNACK()
	})
}

// When istiod goes away the watchers keep their resources (they are told
// once), new watches are answered from the cache, and when istiod returns
// the client resumes every subscription with the last accepted versions.
func TestReconnectResumesAndServesFromCache(t *testing.T) {
	srv := xdstest.NewServer(t)
	v1 := srv.Set(xdstest.Service(host, port, endpoints("10.1.0.1")...))
	c := newClient(t, srv)
	ew := newRecorder[*xdsresource.Endpoints]()
	defer c.WatchEndpoints(clusterName, ew)()
	lw := newRecorder[*xdsresource.Listener]()
	defer c.WatchListener(listenerName, lw)()
	ew.next(t)
	lw.next(t)
	waitFor(t, "both ACKs", func() bool {
		return typeStatus(c, xdsresource.EndpointsType).Version == v1 && typeStatus(c, xdsresource.ListenerType).Version == v1
	})

	srv.Stop()
	if e := ew.next(t); e.kind != failed || !strings.Contains(e.err.Error(), "no istiod at "+srv.Address()) {
		t.Fatalf("event after istiod stopped = %+v, want a connection error naming the address", e)
	}
	waitFor(t, "TRANSIENT_FAILURE", func() bool { return c.Status().State == xdsclient.TransientFailure })
	// Several reconnect attempts fail while the server is down; the watchers
	// are told only once.
	time.Sleep(300 * time.Millisecond)
	ew.none(t, 0)
	if st := c.Status(); !strings.Contains(st.LastConnError, "SHOAL_XDS_ADDRESS") {
		t.Fatalf("status error %q does not say what to set", st.LastConnError)
	}

	// Served from cache while down.
	cached := newRecorder[*xdsresource.Endpoints]()
	cancelCached := c.WatchEndpoints(clusterName, cached)
	if got := addresses(cached.next(t).resource); !slices.Equal(got, []string{"10.1.0.1:20000"}) {
		t.Fatalf("cached endpoints = %v", got)
	}
	cancelCached()

	n := len(srv.Requests())
	v2 := srv.Set(xdstest.Service(host, port, endpoints("10.1.0.1", "10.1.0.2")...))
	srv.Restart()
	resumed := waitRequest(t, srv, n, isType(xdsresource.EndpointsType))
	if resumed.VersionInfo != v1 || resumed.ResponseNonce != "" || !slices.Equal(resumed.ResourceNames, []string{clusterName}) {
		t.Fatalf("resume request = %+v, want version %s, no nonce, names [%s]", resumed, v1, clusterName)
	}
	if first := srv.Requests()[n]; first.Node == nil {
		t.Fatalf("the first request of the new stream has no node: %+v", first)
	}
	waitRequest(t, srv, n, func(r xdstest.Request) bool { return r.TypeURL == xdsresource.ListenerURL && r.VersionInfo == v1 })
	if got := addresses(ew.nextOf(t, changed).resource); !slices.Equal(got, []string{"10.1.0.1:20000", "10.1.0.2:20000"}) {
		t.Fatalf("endpoints after the restart = %v", got)
	}
	waitFor(t, "READY and the new version ACKed", func() bool {
		st := c.Status()
		return st.State == xdsclient.Ready && st.Streams == 2 && typeStatus(c, xdsresource.EndpointsType).Version == v2
	})
}

// Endpoints added and removed reach the watcher, in order.
func TestEndpointsAddAndRemove(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(host, port, endpoints("10.1.0.1")...))
	c := newClient(t, srv)
	ew := newRecorder[*xdsresource.Endpoints]()
	defer c.WatchEndpoints(clusterName, ew)()
	steps := [][]string{
		{"10.1.0.1"},
		{"10.1.0.1", "10.1.0.2", "10.1.0.3"},
		{"10.1.0.3"},
		{},
	}
	for i, ips := range steps {
		if i > 0 {
			srv.Set(xdstest.Service(host, port, endpoints(ips...)...))
		}
		var want []string
		for _, ip := range ips {
			want = append(want, ip+":20000")
		}
		if got := addresses(ew.next(t).resource); !slices.Equal(got, want) {
			t.Fatalf("step %d: endpoints %v, want %v", i, got, want)
		}
	}
}

// A listener that disappears from LDS is reported as gone at once; one that
// never existed once no response has brought it for a second (not at the
// first response lacking it, which may predate the request naming it; not
// after the 15 s resource timeout either).
func TestListenerRemovedAndUnknown(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(host, port))
	c := newClient(t, srv)
	lw := newRecorder[*xdsresource.Listener]()
	defer c.WatchListener(listenerName, lw)()
	lw.next(t)
	missing := newRecorder[*xdsresource.Listener]()
	defer c.WatchListener("nobody.default.svc.cluster.local:80", missing)()
	if e := missing.next(t); e.kind != notFound {
		t.Fatalf("unknown listener event = %+v, want not found", e)
	}
	srv.Set(xdstest.Resources{})
	if e := lw.next(t); e.kind != notFound {
		t.Fatalf("removed listener event = %+v, want not found", e)
	}
}

// A name stays subscribed while any watcher remains; the last one leaving
// unsubscribes it (EDS: an empty list). For LDS and CDS the client never sends
// an empty list, which istiod would read as a wildcard.
func TestUnsubscribeWhenLastWatcherLeaves(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(host, port, endpoints("10.1.0.1")...))
	c := newClient(t, srv)
	a, b := newRecorder[*xdsresource.Endpoints](), newRecorder[*xdsresource.Endpoints]()
	cancelA := c.WatchEndpoints(clusterName, a)
	cancelB := c.WatchEndpoints(clusterName, b)
	a.next(t)
	b.next(t)
	cw := newRecorder[*xdsresource.Cluster]()
	cancelC := c.WatchCluster(clusterName, cw)
	cw.next(t)
	for _, u := range []string{xdsresource.EndpointsURL, xdsresource.ClusterURL} {
		waitRequest(t, srv, 0, func(r xdstest.Request) bool { return r.TypeURL == u && r.ResponseNonce != "" })
	}

	n := len(srv.Requests())
	cancelA()
	cancelA() // idempotent
	time.Sleep(50 * time.Millisecond)
	for _, r := range srv.Requests()[n:] {
		if r.TypeURL == xdsresource.EndpointsURL {
			t.Fatalf("request after one of two watchers left: %+v", r)
		}
	}
	cancelB()
	waitRequest(t, srv, n, func(r xdstest.Request) bool {
		return r.TypeURL == xdsresource.EndpointsURL && len(r.ResourceNames) == 0
	})
	if got := typeStatus(c, xdsresource.EndpointsType).Resources; len(got) != 0 {
		t.Fatalf("unwatched endpoints still cached: %+v", got)
	}

	n = len(srv.Requests())
	cancelC()
	srv.Set(xdstest.Service(host, port, endpoints("10.1.0.9")...))
	waitRequest(t, srv, n, func(r xdstest.Request) bool { return r.TypeURL == xdsresource.ClusterURL })
	for _, r := range srv.Requests()[n:] {
		if r.TypeURL == xdsresource.ClusterURL && len(r.ResourceNames) == 0 {
			t.Fatalf("empty CDS list sent (a wildcard to istiod): %+v", r)
		}
	}
	cw.none(t, 50*time.Millisecond)
}

// A watcher that arrives after an invalid first version, or while istiod is
// unreachable with nothing cached, is told why it gets nothing.
func TestLateWatcherLearnsWhy(t *testing.T) {
	srv := xdstest.NewServer(t)
	bad := xdstest.Cluster(host, "", port)
	bad.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	srv.Set(xdstest.Resources{Clusters: []*clusterv3.Cluster{bad}})
	c := newClient(t, srv)
	first := newRecorder[*xdsresource.Cluster]()
	defer c.WatchCluster(clusterName, first)()
	if e := first.next(t); e.kind != failed {
		t.Fatalf("first watcher event %+v", e)
	}
	late := newRecorder[*xdsresource.Cluster]()
	defer c.WatchCluster(clusterName, late)()
	if e := late.next(t); e.kind != failed || !strings.Contains(e.err.Error(), "CLUSTER_PROVIDED") {
		t.Fatalf("late watcher event %+v, want the validation error", e)
	}

	srv.Stop()
	waitFor(t, "TRANSIENT_FAILURE", func() bool { return c.Status().State == xdsclient.TransientFailure })
	uncached := newRecorder[*xdsresource.Endpoints]()
	defer c.WatchEndpoints("outbound|1||nothing.cached", uncached)()
	if e := uncached.next(t); e.kind != failed || !strings.Contains(e.err.Error(), "no istiod at") {
		t.Fatalf("uncached watcher event %+v, want the connection error", e)
	}
}

// A route configuration or endpoints nobody answers for is reported as not
// existing after the resource timeout (istiod answers with empty ones; other
// servers may stay silent).
func TestUnansweredResourceTimesOut(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(host, port))
	c, err := xdsclient.New(testConfig(srv.Address()), xdsclient.WithLogger(quietLogger()),
		xdsclient.WithResourceTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	silent := newRecorder[*xdsresource.Endpoints]()
	defer c.WatchEndpoints("outbound|1||nobody.default.svc.cluster.local", silent)()
	answered := newRecorder[*xdsresource.Endpoints]()
	defer c.WatchEndpoints(clusterName, answered)()
	if e := answered.next(t); e.kind != changed {
		t.Fatalf("answered event %+v", e)
	}
	start := time.Now()
	if e := silent.next(t); e.kind != notFound {
		t.Fatalf("silent event %+v, want not found", e)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("not found after %v", d)
	}
	answered.none(t, 200*time.Millisecond)
	for _, r := range typeStatus(c, xdsresource.EndpointsType).Resources {
		want := xdsclient.StateACKed
		if r.Name != clusterName {
			want = xdsclient.StateNotFound
		}
		if r.State != want {
			t.Fatalf("%s is %v, want %v", r.Name, r.State, want)
		}
	}
}

// Status marshals to JSON a CLI can print: names, not numbers.
func TestStatusJSON(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(host, port, endpoints("10.1.0.1")...))
	c := newClient(t, srv)
	ew := newRecorder[*xdsresource.Endpoints]()
	defer c.WatchEndpoints(clusterName, ew)()
	ew.next(t)
	b, err := json.Marshal(c.Status())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"State":"READY"`, `"Type":"EDS"`, `"State":"ACKED"`, `"Address":"10.1.0.1:20000"`, `"Health":"HEALTHY"`, `"NodeID":"sidecar~10.0.0.7~consumer-0.default~default.svc.cluster.local"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("status JSON lacks %s:\n%s", want, b)
		}
	}
}

// Connect introduces the node at once, with nothing watched (what
// WorkloadEntry auto-registration needs), and again after a reconnect;
// nothing is subscribed by it.
func TestConnectAnnouncesTheNode(t *testing.T) {
	srv := xdstest.NewServer(t)
	cfg := testConfig(srv.Address())
	cfg.Node = bootstrap.Identity{PodName: "provider-0", Namespace: "shop", IPs: []string{"127.0.0.1"}, AutoRegisterGroup: "greeter"}.Node()
	c, err := xdsclient.New(cfg, xdsclient.WithLogger(quietLogger()), xdsclient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Connect()
	hello := waitRequest(t, srv, 0, func(r xdstest.Request) bool { return r.Node != nil })
	if got := hello.Node.GetMetadata().GetFields()["AUTO_REGISTER_GROUP"].GetStringValue(); got != "greeter" || len(hello.ResourceNames) != 0 {
		t.Fatalf("hello %+v (AUTO_REGISTER_GROUP %q), want the node and no names", hello, got)
	}
	srv.Stop()
	n := len(srv.Requests())
	srv.Restart()
	again := waitRequest(t, srv, n, func(r xdstest.Request) bool { return r.Node != nil })
	if again.Stream == hello.Stream || len(again.ResourceNames) != 0 {
		t.Fatalf("after the restart %+v", again)
	}
}

// A server that takes the hello's empty EDS list as a wildcard (as
// go-control-plane does) answers it with every endpoint; a watch that
// starts after that answer still gets its endpoints. The client used to
// adopt the wildcard answer's version, so its subscription looked like an
// ACK and the server never sent the endpoints again.
func TestWatchAfterWildcardHelloAnswer(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service("greeter.default.svc.cluster.local", 20000, xdstest.Endpoint{IP: "10.1.0.1", Port: 20000}))
	cfg := testConfig(srv.Address())
	cfg.Node = bootstrap.Identity{PodName: "provider-0", Namespace: "shop", IPs: []string{"127.0.0.1"}, AutoRegisterGroup: "greeter"}.Node()
	c, err := xdsclient.New(cfg, xdsclient.WithLogger(quietLogger()), xdsclient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Connect()
	waitFor(t, "the answer to the hello", func() bool {
		for _, ts := range c.Status().Types {
			if ts.Type == xdsresource.EndpointsType && ts.Responses > 0 {
				return true
			}
		}
		return false
	})
	ew := newRecorder[*xdsresource.Endpoints]()
	defer c.WatchEndpoints("outbound|20000||greeter.default.svc.cluster.local", ew)()
	if got := addresses(ew.next(t).resource); !slices.Equal(got, []string{"10.1.0.1:20000"}) {
		t.Fatalf("endpoints = %v, want [10.1.0.1:20000]", got)
	}
}
