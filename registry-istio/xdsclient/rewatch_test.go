package xdsclient_test

import (
	"slices"
	"testing"

	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

// watchAny adapts a typed watch method to a recorder of any resource.
func watchAny[T xdsresource.Resource](watch func(*xdsclient.Client, string, xdsclient.Watcher[T]) func()) func(*xdsclient.Client, string, *recorder[xdsresource.Resource]) func() {
	return func(c *xdsclient.Client, name string, r *recorder[xdsresource.Resource]) func() {
		return watch(c, name, xdsclient.WatcherFuncs[T]{OnChanged: func(v T) { r.ResourceChanged(v) }, OnNotFound: r.ResourceDoesNotExist})
	}
}

// acked waits until the client has ACKed version v of type t.
func acked(t *testing.T, srv *xdstest.Server, typ xdsresource.Type, v string) {
	t.Helper()
	waitRequest(t, srv, 0, func(r xdstest.Request) bool {
		return r.TypeURL == typ.URL() && r.VersionInfo == v && !r.IsNACK()
	})
}

// A name watched again after its last watcher left gets its data at once.
// Istiod answers only when the subscribed names change; here they do not:
// the last LDS/CDS names stay subscribed (an empty list would be a
// wildcard), and a name dropped and watched again before the next request
// goes out is never unsubscribed. The client used to forget the resource
// when its last watcher left, so the new watcher waited for an answer that
// never came (a closed and reopened consumer.Reference got "no discovery
// state yet", then NOT_FOUND after the resource timeout).
func TestWatchAgainAfterLastWatcherLeft(t *testing.T) {
	cases := []struct {
		name  string
		typ   xdsresource.Type
		watch func(c *xdsclient.Client, name string, r *recorder[xdsresource.Resource]) func()
		rname string
	}{
		{"Listener", xdsresource.ListenerType, watchAny((*xdsclient.Client).WatchListener), listenerName},
		{"Cluster", xdsresource.ClusterType, watchAny((*xdsclient.Client).WatchCluster), clusterName},
		{"RouteConfig", xdsresource.RouteConfigType, watchAny((*xdsclient.Client).WatchRouteConfig), routeName},
		{"Endpoints", xdsresource.EndpointsType, watchAny((*xdsclient.Client).WatchEndpoints), clusterName},
	}
	for _, tc := range cases {
		for _, afterRequest := range []bool{true, false} {
			name := tc.name + "/BeforeTheRequest"
			if afterRequest {
				name = tc.name + "/AfterTheRequest"
			}
			t.Run(name, func(t *testing.T) {
				srv := xdstest.NewServer(t)
				v := srv.Set(xdstest.Service(host, port, endpoints("10.1.0.1")...))
				c := newClient(t, srv)
				first := newRecorder[xdsresource.Resource]()
				cancel := tc.watch(c, tc.rname, first)
				if e := first.next(t); e.kind != changed {
					t.Fatalf("first watch: %+v", e)
				}
				acked(t, srv, tc.typ, v)
				n := len(srv.Requests())
				cancel()
				if afterRequest {
					// The request that follows the last watcher's leaving.
					waitRequest(t, srv, n, isType(tc.typ))
				}
				again := newRecorder[xdsresource.Resource]()
				defer tc.watch(c, tc.rname, again)()
				if e := again.next(t); e.kind != changed || e.resource.ResourceName() != tc.rname {
					t.Fatalf("watched again: %+v, want %s", e, tc.rname)
				}
			})
		}
	}
}

// A listener kept subscribed after its last watcher left stays up to date
// (istiod keeps sending it), and is forgotten once a request that no longer
// names it goes out.
func TestUnwatchedButSubscribedStaysFresh(t *testing.T) {
	srv := xdstest.NewServer(t)
	srv.Set(xdstest.Service(host, port, endpoints("10.1.0.1")...))
	c := newClient(t, srv)
	first := newRecorder[*xdsresource.Cluster]()
	cancel := c.WatchCluster(clusterName, first)
	if e := first.next(t); e.resource.MaxRequests == 7 {
		t.Fatalf("first version already has the change: %+v", e.resource)
	}
	cancel()
	changedSvc := xdstest.Service(host, port, endpoints("10.1.0.1")...)
	changedSvc.Clusters[0] = xdstest.WithMaxRequests(changedSvc.Clusters[0], 7)
	v2 := srv.Set(changedSvc)
	acked(t, srv, xdsresource.ClusterType, v2)
	again := newRecorder[*xdsresource.Cluster]()
	cancel = c.WatchCluster(clusterName, again)
	if e := again.next(t); e.kind != changed || e.resource.MaxRequests != 7 {
		t.Fatalf("watched again: %+v, want the version sent while unwatched (max requests 7)", e)
	}
	cancel()

	// Another name replaces it in the subscription: it is dropped.
	other := xdstest.ClusterName(host, "v2", port)
	n := len(srv.Requests())
	defer c.WatchCluster(other, newRecorder[*xdsresource.Cluster]())()
	waitRequest(t, srv, n, func(r xdstest.Request) bool {
		return r.TypeURL == xdsresource.ClusterURL && slices.Equal(r.ResourceNames, []string{other})
	})
	for _, r := range typeStatus(c, xdsresource.ClusterType).Resources {
		if r.Name == clusterName {
			t.Fatalf("%s still cached after the subscription dropped it: %+v", clusterName, r)
		}
	}
}
