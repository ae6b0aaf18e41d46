package xdsmesh_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

const port = 20000

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// canary is what istiod sends for a VirtualService splitting 80/20 between
// DestinationRule subsets v1 and v2; route edits the split route.
func canary(v1IPs, v2IPs []string, route func(*routev3.Route)) xdstest.Resources {
	eps := func(ips []string, version string) []xdstest.Endpoint {
		var out []xdstest.Endpoint
		for _, ip := range ips {
			out = append(out, xdstest.Endpoint{IP: ip, Port: port, Labels: map[string]string{"version": version}})
		}
		return out
	}
	r := xdstest.Split(host, port,
		xdstest.Subset{Name: "v1", Weight: 80, Endpoints: eps(v1IPs, "v1")},
		xdstest.Subset{Name: "v2", Weight: 20, Endpoints: eps(v2IPs, "v2")})
	split := r.Routes[0].GetVirtualHosts()[0].GetRoutes()[0]
	split.GetRoute().RetryPolicy = xdstest.RetryPolicy("unavailable", 2, 0)
	if route != nil {
		route(split)
	}
	return r
}

// newDiscovery returns a Discovery over a client of srv. Listeners and
// clusters istiod does not know are reported missing after the resource
// timeout, 1 s here.
func newDiscovery(t *testing.T, srv *xdstest.Server) (*xdsmesh.Discovery, *xdsclient.Client) {
	t.Helper()
	cfg := &bootstrap.Config{ServerURI: srv.Address(), Node: bootstrap.Identity{PodName: "c", Namespace: "default", IPs: []string{"10.0.0.9"}}.Node()}
	c, err := xdsclient.New(cfg, xdsclient.WithBackoff(10*time.Millisecond, 100*time.Millisecond), xdsclient.WithResourceTimeout(time.Second), xdsclient.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return xdsmesh.NewDiscovery(c, xdsmesh.WithLogger(quiet)), c
}

func next(t *testing.T, w registry.Watcher) *mesh.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return s
}

// ready lists the ready endpoints of a subset of the watched service, which
// the snapshot names after the watched key.
func ready(s *mesh.Snapshot, subset string) []string {
	service := ""
	for _, svc := range s.Services() {
		if strings.Contains(svc.Name, target) {
			service = svc.Name
		}
	}
	c, ok := s.Cluster(mesh.Destination{Service: service, Subset: subset})
	if !ok {
		return nil
	}
	var out []string
	for _, e := range c.Ready() {
		out = append(out, e.Address)
	}
	slices.Sort(out)
	return out
}

// A host-level target resolves through the whole chain into a snapshot
// with the split, the subsets and their endpoints; endpoint changes produce
// new snapshots; a bad route is NACKed and the last snapshot stays.
func TestDiscoveryFollowsTheChain(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(canary([]string{"10.1.0.1"}, []string{"10.2.0.1"}, nil))
	d, _ := newDiscovery(t, srv)
	w, err := d.Watch(context.Background(), registry.Key{Interface: "xds:///" + target})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	s := next(t, w)
	r := s.Match("/greet.GreetService/Greet", nil, nil)
	if r == nil || len(r.Destinations) != 2 || r.Destinations[0].Subset != "v1" || r.Destinations[0].Weight != 80 || r.Policy.Retry == nil || r.Policy.Retry.Attempts != 2 {
		t.Fatalf("route %+v", r)
	}
	if got := ready(s, "v1"); !slices.Equal(got, []string{"10.1.0.1:20000"}) {
		t.Fatalf("v1 endpoints %v", got)
	}
	// The watched service is named after the key, and holds the default
	// cluster's endpoints (all of them) for consumers that ignore routes.
	if all := ready(s, ""); !slices.Equal(all, []string{"10.1.0.1:20000", "10.2.0.1:20000"}) || s.Services()[0].Name != "xds:///"+target {
		t.Fatalf("watched service %q endpoints %v", s.Services()[0].Name, all)
	}

	srv.Set(canary([]string{"10.1.0.1", "10.1.0.2"}, []string{"10.2.0.1"}, nil))
	// The subset's and the default cluster's endpoints are separate EDS
	// resources and may arrive in separate snapshots: take them all.
	for range 5 {
		s = next(t, w)
		if len(ready(s, "v1")) == 2 && len(ready(s, "")) == 3 {
			break
		}
	}
	if got := ready(s, "v1"); !slices.Equal(got, []string{"10.1.0.1:20000", "10.1.0.2:20000"}) || len(ready(s, "")) != 3 {
		t.Fatalf("endpoints after the scale-up: v1 %v, all %v", got, ready(s, ""))
	}

	n := len(srv.Requests())
	srv.Set(canary([]string{"10.1.0.1", "10.1.0.2"}, []string{"10.2.0.1"}, func(r *routev3.Route) {
		r.Match = &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "(("}}}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nack, err := srv.WaitForNewRequest(ctx, n, func(r xdstest.Request) bool { return r.IsNACK() })
	if err != nil || !strings.Contains(nack.ErrorDetail, `"((" does not compile`) {
		t.Fatalf("NACK %+v, %v", nack, err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if s2, err := w.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a NACKed update produced snapshot %v (err %v)", s2, err)
	}
	if got := ready(s, "v1"); len(got) != 2 {
		t.Fatalf("last good snapshot changed: %v", got)
	}
}

// Switching the route to one subset drops the other subset's watches.
func TestDiscoveryDropsUnreferencedClusters(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(canary([]string{"10.1.0.1"}, []string{"10.2.0.1"}, nil))
	d, c := newDiscovery(t, srv)
	w, err := d.Watch(context.Background(), registry.Key{Interface: target})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	next(t, w)
	srv.Set(canary([]string{"10.1.0.1"}, []string{"10.2.0.1"}, func(r *routev3.Route) {
		r.GetRoute().GetWeightedClusters().Clusters = r.GetRoute().GetWeightedClusters().Clusters[:1]
	}))
	s := next(t, w)
	if _, ok := s.Cluster(mesh.Destination{Service: target, Subset: "v2"}); ok {
		t.Fatal("v2 still in the snapshot")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var eds []string
		for _, ts := range c.Status().Types {
			if ts.Type.String() == "EDS" {
				for _, r := range ts.Resources {
					eds = append(eds, r.Name)
				}
			}
		}
		if slices.Equal(eds, []string{xdstest.ClusterName(host, "v1", port), xdstest.ClusterName(host, "", port)}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("EDS watches %v, want only v1 and the default cluster", eds)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An unknown target yields an empty snapshot (calls fail fast), and closing
// the watcher releases every watch.
func TestDiscoveryUnknownTargetAndClose(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(canary([]string{"10.1.0.1"}, nil, nil))
	d, c := newDiscovery(t, srv)
	w, err := d.Watch(context.Background(), registry.Key{Interface: "xds:///nobody.default.svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	s := next(t, w)
	if len(s.Services()) != 0 || s.Match("/a/b", nil, nil) != nil {
		t.Fatalf("snapshot for an unknown target: %+v", s.Services())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(context.Background()); !errors.Is(err, registry.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	// Nothing is watched any more. (Unwatched resources stay cached until
	// the request that drops them goes out; the last listener stays, since
	// an empty LDS list would be a wildcard to istiod.)
	for _, ts := range c.Status().Types {
		for _, r := range ts.Resources {
			if r.Watchers != 0 {
				t.Fatalf("%v %s still watched after Close: %+v", ts.Type, r.Name, ts.Resources)
			}
		}
	}
	if _, err := d.Watch(context.Background(), registry.Key{Interface: "xds:///greeter"}); err == nil || !strings.Contains(err.Error(), "xds:///<host>:<port>") {
		t.Fatalf("bad target error = %v", err)
	}
	if _, err := d.Watch(context.Background(), registry.Key{Interface: "greet..GreetService"}); err == nil || !strings.Contains(err.Error(), "empty segment") {
		t.Fatalf("bad interface error = %v", err)
	}
}

// A consumer names only the interface (and group); the host of the
// ServiceEntry carrying it is derived, and istiod's resources for that host
// resolve it.
func TestDiscoveryByInterfaceName(t *testing.T) {
	const seHost = "greet.greetservice.blue.shoal.local"
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(seHost, 50051, xdstest.Endpoint{IP: "10.3.0.1", Port: 20000, Labels: map[string]string{"version": "v2"}}))
	d, _ := newDiscovery(t, srv)
	key := registry.Key{Interface: "greet.GreetService", Group: "blue", Version: "v2"}
	if got, err := d.Target(key); err != nil || got != seHost+":50051" {
		t.Fatalf("Target = %q, %v", got, err)
	}
	w, err := d.Watch(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := next(t, w)
	c, ok := s.Cluster(mesh.Destination{Service: "greet.GreetService"})
	if !ok || len(c.Ready()) != 1 || c.Ready()[0].Address != "10.3.0.1:20000" || c.Ready()[0].Labels["version"] != "v2" {
		t.Fatalf("cluster %+v %v", c, ok)
	}
}

// While istiod is away the last snapshot stays (no empty one is published),
// and after it returns a change arrives as a new snapshot.
func TestDiscoveryKeepsSnapshotWhileIstiodIsDown(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(canary([]string{"10.1.0.1"}, []string{"10.2.0.1"}, nil))
	d, c := newDiscovery(t, srv)
	w, err := d.Watch(context.Background(), registry.Key{Interface: target})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := next(t, w)

	srv.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for c.Status().State != xdsclient.TransientFailure {
		if time.Now().After(deadline) {
			t.Fatal("client never noticed istiod stopped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if s2, err := w.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a snapshot was published while istiod was down: %v (err %v)", s2, err)
	}
	if got := ready(s, "v1"); !slices.Equal(got, []string{"10.1.0.1:20000"}) {
		t.Fatalf("the last snapshot changed: %v", got)
	}

	srv.Set(canary([]string{"10.1.0.1", "10.1.0.3"}, []string{"10.2.0.1"}, nil))
	srv.Restart()
	// The resumed stream's resources may arrive in more than one snapshot.
	var got []string
	for range 5 {
		if got = ready(next(t, w), "v1"); len(got) == 2 {
			break
		}
	}
	if !slices.Equal(got, []string{"10.1.0.1:20000", "10.1.0.3:20000"}) {
		t.Fatalf("after istiod returned: %v", got)
	}
}

// An app-level reference (ProvidedBy) resolves to the application's
// Kubernetes Service host in the consumer's namespace, on the registry's
// port, and its endpoints come through the usual chain under the
// interface's name. It wins over the interface's own ServiceEntry host.
func TestDiscoveryByApplication(t *testing.T) {
	const (
		appHost = "greeter.default.svc.cluster.local"
		seHost  = "greet.greetservice.default.shoal.local"
	)
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(appHost, 50051, xdstest.Endpoint{IP: "10.4.0.1", Port: 20000}).Merge(
		xdstest.Service(seHost, 50051, xdstest.Endpoint{IP: "10.5.0.1", Port: 20000}),
		xdstest.Service("greeter.shop.svc.cluster.local", 20000, xdstest.Endpoint{IP: "10.6.0.1", Port: 20000}),
	))
	d, _ := newDiscovery(t, srv)
	key := registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter"}
	if got, err := d.Target(key); err != nil || got != appHost+":50051" {
		t.Fatalf("Target = %q, %v", got, err)
	}
	for _, tt := range []struct {
		key  registry.Key
		want string
	}{
		{key, "10.4.0.1:20000"},
		// Qualified with a namespace and a port.
		{registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter.shop:20000"}, "10.6.0.1:20000"},
	} {
		w, err := d.Watch(context.Background(), tt.key)
		if err != nil {
			t.Fatal(err)
		}
		s := next(t, w)
		c, ok := s.Cluster(mesh.Destination{Service: "greet.GreetService"})
		if !ok || len(c.Ready()) != 1 || c.Ready()[0].Address != tt.want {
			t.Fatalf("%s: cluster %+v %v, want the application's endpoint %s", tt.key, c, ok, tt.want)
		}
		if r := s.Match("/greet.GreetService/Greet", nil, nil); r == nil || len(r.Destinations) != 1 || r.Destinations[0].Service != "greet.GreetService" {
			t.Fatalf("%s: the interface's calls route to %+v", tt.key, r)
		}
		_ = w.Close()
	}
}

// An application istiod does not know yields the empty snapshot an unknown
// host gets (calls fail fast with UNAVAILABLE); a malformed reference, or
// one next to a host-level target, is refused with the reason.
func TestDiscoveryByApplicationUnknownAndBad(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service("greeter.default.svc.cluster.local", 50051, xdstest.Endpoint{IP: "10.4.0.1", Port: 20000}))
	_, c := newDiscovery(t, srv)
	var logs syncBuffer
	d := xdsmesh.NewDiscovery(c, xdsmesh.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	w, err := d.Watch(context.Background(), registry.Key{Interface: "greet.GreetService", ProvidedBy: "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if s := next(t, w); len(s.Services()) != 0 || s.Match("/greet.GreetService/Greet", nil, nil) != nil {
		t.Fatalf("snapshot for an unknown application: %+v", s.Services())
	}
	if want := `no application \"nobody\": create its Kubernetes Service (or a ServiceEntry with host nobody.default.svc.cluster.local:50051)`; !strings.Contains(logs.String(), want) {
		t.Errorf("log %q does not say %q", logs.String(), want)
	}
	for _, tt := range []struct {
		key  registry.Key
		want string
	}{
		{registry.Key{Interface: "greet.GreetService", ProvidedBy: "Greeter"}, `providedBy "Greeter": application "Greeter" does not start with a lower-case letter`},
		{registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter,billing"}, "names several applications"},
		{registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter:x"}, `port "x" is not 1-65535`},
		{registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter app"}, "has spaces"},
		{registry.Key{Interface: "xds:///greeter.default.svc.cluster.local:50051", ProvidedBy: "greeter"}, "both say where to go"},
		{registry.Key{Interface: "greeter.default.svc.cluster.local:50051", ProvidedBy: "greeter"}, "is a host-level target and providedBy"},
	} {
		if _, err := d.Watch(context.Background(), tt.key); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Watch(%+v) = %v, want %q", tt.key, err, tt.want)
		}
	}
}

// The namespace and cluster domain come from the node, and WithNamespace
// overrides the namespace.
func TestDiscoveryByApplicationNamespace(t *testing.T) {
	srv := xdstest.NewServer(t)
	cfg := &bootstrap.Config{ServerURI: srv.Address(), Node: bootstrap.Identity{PodName: "c", Namespace: "shop", Domain: "corp.local", IPs: []string{"10.0.0.9"}}.Node()}
	c, err := xdsclient.New(cfg, xdsclient.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter"}
	if got, err := xdsmesh.NewDiscovery(c).Target(key); err != nil || got != "greeter.shop.svc.corp.local:50051" {
		t.Errorf("Target = %q, %v; want the node's namespace and domain", got, err)
	}
	if got, err := xdsmesh.NewDiscovery(c, xdsmesh.WithNamespace("billing")).Target(key); err != nil || got != "greeter.billing.svc.corp.local:50051" {
		t.Errorf("Target WithNamespace = %q, %v", got, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
