package xdstest_test

import (
	"fmt"
	"maps"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

const (
	listenerURL  = "type.googleapis.com/envoy.config.listener.v3.Listener"
	endpointsURL = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

// adsProbe drives one raw ADS stream and tells answered requests from
// unanswered ones: after a request that must stay unanswered it sends a
// request that istiod always answers (an LDS subscription to a fresh name)
// and checks that this answer is the next response.
type adsProbe struct {
	t      *testing.T
	s      discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	nonce  map[string]string // type URL -> last response nonce
	probes int
}

func newADSProbe(t *testing.T, srv *xdstest.Server) *adsProbe {
	p := &adsProbe{t: t, s: stream(t, srv.Address()), nonce: map[string]string{}}
	p.send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "n1"}, TypeUrl: listenerURL, ResourceNames: []string{"probe-0"}})
	p.next(listenerURL)
	return p
}

func (p *adsProbe) send(req *discoveryv3.DiscoveryRequest) {
	p.t.Helper()
	if err := p.s.Send(req); err != nil {
		p.t.Fatal(err)
	}
}

// req is a request for names of type url that ACKs the last response.
func (p *adsProbe) req(url string, names ...string) *discoveryv3.DiscoveryRequest {
	return &discoveryv3.DiscoveryRequest{TypeUrl: url, ResourceNames: names, ResponseNonce: p.nonce[url]}
}

// next takes the next response and fails unless it is of type url.
func (p *adsProbe) next(url string) *discoveryv3.DiscoveryResponse {
	p.t.Helper()
	r := recv(p.t, p.s)
	if r.GetTypeUrl() != url {
		p.t.Fatalf("response of type %s (version %s, %d resources), want %s", r.GetTypeUrl(), r.GetVersionInfo(), len(r.GetResources()), url)
	}
	p.nonce[url] = r.GetNonce()
	return r
}

// answered sends req and returns the response to it.
func (p *adsProbe) answered(req *discoveryv3.DiscoveryRequest) *discoveryv3.DiscoveryResponse {
	p.t.Helper()
	p.send(req)
	return p.next(req.GetTypeUrl())
}

// unanswered sends req and checks that the server answers the probe that
// follows it, and not req.
func (p *adsProbe) unanswered(req *discoveryv3.DiscoveryRequest) {
	p.t.Helper()
	p.send(req)
	p.probes++
	p.send(p.req(listenerURL, fmt.Sprintf("probe-%d", p.probes)))
	p.next(listenerURL)
}

// The server answers when istiod would and only then (istiod's
// ShouldRespond): a new or resumed subscription, changed names (LDS/CDS) or
// added names (RDS/EDS), and a new version; never an ACK with the same
// names whatever version it carries, an unsubscription, or a stale nonce.
// Before this, an ACK carrying another version than the server's was
// answered (go-control-plane compares versions), so hermetic tests could
// not see clients that wait for an answer istiod never sends.
func TestServerAnswersOnlyWhenIstiodWould(t *testing.T) {
	srv := xdstest.NewServer(t)
	const a, b = "a.default.svc.cluster.local", "b.default.svc.cluster.local"
	v1 := srv.Set(xdstest.Service(a, 80).Merge(xdstest.Service(b, 80)))
	ca, cb := xdstest.ClusterName(a, "", 80), xdstest.ClusterName(b, "", 80)
	p := newADSProbe(t, srv)

	if r := p.answered(p.req(clusterURL, ca)); r.GetVersionInfo() != v1 || len(r.GetResources()) != 1 {
		t.Fatalf("first CDS answer: version %s, %d resources", r.GetVersionInfo(), len(r.GetResources()))
	}
	// An ACK with the same names is not answered, whatever its version.
	ack := p.req(clusterURL, ca)
	ack.VersionInfo = "0"
	p.unanswered(ack)
	ack.VersionInfo = v1
	p.unanswered(ack)
	// LDS/CDS: any change of names is answered, a removal too.
	if r := p.answered(p.req(clusterURL, ca, cb)); len(r.GetResources()) != 2 {
		t.Fatalf("CDS answer after adding a name: %d resources, want 2", len(r.GetResources()))
	}
	if r := p.answered(p.req(clusterURL, ca)); len(r.GetResources()) != 1 {
		t.Fatalf("CDS answer after removing a name: %d resources, want 1", len(r.GetResources()))
	}
	// A stale nonce is ignored, names included: the same names as before
	// it are still an ACK.
	stale := p.req(clusterURL, ca, cb)
	stale.ResponseNonce = "stale"
	p.unanswered(stale)
	p.unanswered(p.req(clusterURL, ca))

	// EDS: added names are answered; removals and an empty list (which
	// unsubscribes) are not; after an unsubscription the next request is a
	// new subscription.
	p.answered(p.req(endpointsURL, ca))
	p.answered(p.req(endpointsURL, ca, cb))
	p.unanswered(p.req(endpointsURL, ca))
	p.unanswered(p.req(endpointsURL))
	if r := p.answered(p.req(endpointsURL, ca)); len(r.GetResources()) != 1 {
		t.Fatalf("EDS answer after resubscribing: %d resources, want 1", len(r.GetResources()))
	}
	// A request without a nonce (a resumed subscription) is answered even
	// with the same names.
	for _, url := range []string{clusterURL, endpointsURL} {
		resume := p.req(url, ca)
		resume.ResponseNonce = ""
		p.answered(resume)
	}

	// A new version is pushed to every subscribed type (here, those that
	// ACKed their last answer, as every client does).
	p.unanswered(p.req(clusterURL, ca))
	p.unanswered(p.req(endpointsURL, ca))
	v2 := srv.Set(xdstest.Service(a, 80, xdstest.Endpoint{IP: "10.0.0.1", Port: 80}))
	got := map[string]string{}
	for range 2 {
		r := recv(t, p.s)
		got[r.GetTypeUrl()] = r.GetVersionInfo()
	}
	if want := map[string]string{clusterURL: v2, endpointsURL: v2}; !maps.Equal(got, want) {
		t.Fatalf("after Set: responses %v, want %v", got, want)
	}
}
