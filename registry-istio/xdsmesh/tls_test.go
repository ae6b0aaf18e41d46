package xdsmesh_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// A DestinationRule with ISTIO_MUTUAL reaches the snapshot as the cluster's
// TLS (mode and the destination's identities), is dropped again when the
// rule goes, and a transport socket Shoal cannot honour is NACKed while the
// last good snapshot stays.
func TestDiscoveryFollowsClusterTLS(t *testing.T) {
	const sa = "spiffe://cluster.local/ns/default/sa/greeter"
	plain := xdstest.Service(host, port, xdstest.Endpoint{IP: "10.1.0.1", Port: port})
	mutual := func(edit func(*tlsv3.UpstreamTlsContext)) xdstest.Resources {
		r := xdstest.Service(host, port, xdstest.Endpoint{IP: "10.1.0.1", Port: port})
		ctx := xdstest.UpstreamTLSContext(sa)
		if edit != nil {
			edit(ctx)
		}
		xdstest.WithUpstreamTLS(r.Clusters[0], ctx)
		return r
	}
	tlsOf := func(s *mesh.Snapshot) *mesh.TLS {
		c, ok := s.Cluster(mesh.Destination{Service: "xds:///" + target})
		if !ok {
			t.Fatalf("no cluster in snapshot %s", s.Revision())
		}
		return c.Policy().TLS
	}
	// nextWith waits for the snapshot whose TLS satisfies ok.
	nextWith := func(w registry.Watcher, ok func(*mesh.TLS) bool) *mesh.TLS {
		t.Helper()
		for range 5 {
			if got := tlsOf(next(t, w)); ok(got) {
				return got
			}
		}
		t.Fatal("no snapshot with the expected TLS after 5 updates")
		return nil
	}

	srv := xdstest.NewServer(t)
	srv.Set(plain)
	d, _ := newDiscovery(t, srv)
	w, err := d.Watch(context.Background(), registry.Key{Interface: "xds:///" + target})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := tlsOf(next(t, w)); got.Secure() {
		t.Fatalf("TLS %+v with no DestinationRule, want plaintext", got)
	}

	srv.Set(mutual(nil))
	got := nextWith(w, (*mesh.TLS).Secure)
	if got.Mode != mesh.TLSIstioMutual || !slices.Equal(got.PeerIDs, []string{sa}) {
		t.Fatalf("TLS %+v, want istio_mutual with %s", got, sa)
	}

	n := len(srv.Requests())
	srv.Set(mutual(func(ctx *tlsv3.UpstreamTlsContext) {
		m := ctx.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext().GetMatchSubjectAltNames()[0] //nolint:staticcheck // the field istiod sends
		m.MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: "spiffe://cluster.local/"}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nack, err := srv.WaitForNewRequest(ctx, n, func(r xdstest.Request) bool { return r.IsNACK() })
	if err != nil || !strings.Contains(nack.ErrorDetail, "only case-sensitive exact matches are supported") {
		t.Fatalf("NACK %+v, %v", nack, err)
	}

	srv.Set(plain)
	if got := nextWith(w, func(t *mesh.TLS) bool { return !t.Secure() }); got != nil {
		t.Fatalf("TLS %+v after the DestinationRule went, want nil", got)
	}
}
