package istiometrics_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/observability/internal/echotest"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/direct"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// The Kubernetes Service behind the provider, named differently from its
// app label, so the golden file shows where destination_service comes from.
const (
	serviceName = "echo-svc"
	serviceFQDN = "echo-svc.shop.svc.cluster.local"
	// otherServiceAuthority is a caller's :authority naming another
	// Service (of another namespace) than serviceName, with a port.
	otherServiceAuthority = "echo-public.shop-edge.svc.cluster.local:8080"
)

// TestEnvoyLabelsGolden pins, per case, the label set of one gRPC call as
// an Envoy sidecar with Istio's stats filter reports it
// (testdata/envoy_labels.golden; -update rewrites it):
//
//   - plaintext, source: destination_service and _name are the Service of
//     the cluster the call went to (the endpoint's mesh.LabelService, as
//     registry-istio sets it), _namespace the peer's; principals unknown,
//     connection_security_policy unknown (a client sidecar never reports
//     it);
//   - plaintext, destination: principals unknown, policy none;
//   - mutual TLS, destination: source_principal is the SPIFFE ID of the
//     caller's certificate, destination_principal this workload's,
//     policy mutual_tls;
//   - unknown caller (no exchange headers), plaintext and over mutual TLS:
//     source labels unknown but source_canonical_revision "latest"; over
//     TLS the principal and the namespace come from the certificate;
//   - the :authority does not change destination_service at the
//     destination: Istio configures the inbound stats filter with
//     disable_host_header_fallback, so Envoy takes the inbound cluster's
//     service (istiod's istio.services metadata), never the Host header.
//     Shoal's consumer sends the endpoint's address (an IP) as :authority
//     (the plaintext rows); a grpc-go caller sends its target's host, here
//     a Service named differently from the app label and from
//     WithServiceName.
func TestEnvoyLabelsGolden(t *testing.T) {
	var b strings.Builder
	write := func(name string, g prometheus.Gatherer) map[string]string {
		t.Helper()
		ss := samples(t, g, istiometrics.RequestsTotal)
		if len(ss) != 1 {
			t.Fatalf("%s: %d series after one call, want 1", name, len(ss))
		}
		names := istiometrics.LabelNames()
		if len(ss[0].labels) != len(names) {
			t.Errorf("%s: %d labels, want %d", name, len(ss[0].labels), len(names))
		}
		fmt.Fprintf(&b, "# %s\n", name)
		for _, n := range slices.Sorted(slices.Values(names)) {
			fmt.Fprintf(&b, "%s=%s\n", n, ss[0].labels[n])
		}
		b.WriteString("\n")
		return ss[0].labels
	}

	src, dst, authority := callThroughTransport(t)
	if host, _, err := net.SplitHostPort(authority); err != nil || net.ParseIP(host) == nil {
		t.Errorf("Shoal's consumer sent :authority %q, want the endpoint's IP:port", authority)
	}
	s := write("plaintext, reporter=source", src)
	d := write("plaintext, reporter=destination", dst)
	for _, l := range []string{"destination_service", "destination_service_name", "destination_service_namespace", "destination_workload", "source_workload"} {
		if s[l] != d[l] {
			t.Errorf("%s: source reports %q, destination %q; Envoy reports the same on both sides", l, s[l], d[l])
		}
	}

	ca := newTestCA(t)
	server := ca.leaf(t, 2, "spiffe://cluster.local/ns/shop/sa/echo")
	// The caller's certificate names another namespace than its exchange
	// headers: Envoy takes the namespace from the certificate.
	client := ca.leaf(t, 3, "spiffe://cluster.local/ns/shop-frontend/sa/frontend")
	mtls := handshake(t, ca, server, &client)
	md, err := consumerWorkload.Encode()
	if err != nil {
		t.Fatal(err)
	}
	exchange := call.Attachments{peer.HeaderMetadata: md, peer.HeaderID: consumerWorkload.NodeID()}
	write("mutual TLS, reporter=destination", serve(t, mtls, exchange))
	write("unknown caller, plaintext, reporter=destination", serve(t, nil, nil))
	write("unknown caller, mutual TLS, reporter=destination", serve(t, mtls, nil))
	write("grpc-go caller, :authority another Service's host, reporter=destination", callWithAuthority(t, md, otherServiceAuthority))

	checkGolden(t, "envoy_labels.golden", b.String())
}

// callThroughTransport makes one call from a consumer using
// Metrics.Transport to a provider whose endpoint carries the Service's
// host, and returns both sides' registries and the :authority the
// provider saw.
func callThroughTransport(t *testing.T) (source, destination prometheus.Gatherer, authority string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pm, addr, seen := startMeteredProvider(ctx, t)
	// The registry a mesh consumer has: the endpoint labelled with the
	// Service its cluster belongs to.
	dreg, err := direct.New(fmt.Sprintf("tri://%s/%s?%s=%s", addr, echotest.Service, mesh.LabelService, serviceFQDN))
	if err != nil {
		t.Fatal(err)
	}
	cm, err := istiometrics.New(istiometrics.WithWorkload(consumerWorkload))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := consumer.New(registry.Key{Interface: echotest.Service}, dreg, cm.Transport(), consumer.WithWaitForReady())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ref.Close() })
	if err := echotest.Unary(ctx, tri.NewClient(ref), "hello"); err != nil {
		t.Fatal(err)
	}
	return cm.Registry(), pm.Registry(), seen.get(t)
}

// startMeteredProvider starts an echo provider whose server filter
// records Istio's metrics (WithServiceName(serviceName)), and returns its
// metrics, its address and the :authority of the calls it serves.
func startMeteredProvider(ctx context.Context, t *testing.T) (*istiometrics.Metrics, string, *authorityRecorder) {
	t.Helper()
	pm, err := istiometrics.New(istiometrics.WithWorkload(providerWorkload), istiometrics.WithServiceName(serviceName))
	if err != nil {
		t.Fatal(err)
	}
	seen := &authorityRecorder{}
	p, err := echotest.StartProvider(echotest.Registry(t), pm.ServerFilter(10), seen.filter())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return pm, providerAddress(ctx, t, p.Registry), seen
}

// authorityRecorder is a server filter keeping the :authority of the
// last call served, as triple gives it to server filters.
type authorityRecorder struct {
	mu        sync.Mutex
	authority string
	served    bool
}

func (a *authorityRecorder) filter() filter.Server {
	return filter.Server{
		Name: "authority-recorder", Order: 20,
		Unary: func(ctx context.Context, info *call.Info, req any, next filter.UnaryHandler) (any, error) {
			ci, _ := triple.CallInfoFromContext(ctx)
			a.mu.Lock()
			a.authority, a.served = ci.Authority, true
			a.mu.Unlock()
			return next(ctx, info, req)
		},
	}
}

// get returns the recorded :authority; the call has returned, so the
// filter has run.
func (a *authorityRecorder) get(t *testing.T) string {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.served {
		t.Fatal("the provider served no call")
	}
	return a.authority
}

// callWithAuthority makes one call from a grpc-go client that sends
// authority as :authority and peerMetadata as x-envoy-peer-metadata, and
// returns the provider's registry.
func callWithAuthority(t *testing.T, peerMetadata, authority string) prometheus.Gatherer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pm, addr, seen := startMeteredProvider(ctx, t)
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority(authority))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	ctx = metadata.AppendToOutgoingContext(ctx, peer.HeaderMetadata, peerMetadata, peer.HeaderID, consumerWorkload.NodeID())
	if err := cc.Invoke(ctx, "/"+echotest.Service+"/Echo", wrapperspb.String("hello"), new(wrapperspb.StringValue)); err != nil {
		t.Fatal(err)
	}
	if got := seen.get(t); got != authority {
		t.Fatalf("the provider saw :authority %q, want %q", got, authority)
	}
	return pm.Registry()
}

// providerAddress reads the provider's address from its registry.
func providerAddress(ctx context.Context, t *testing.T, lookup func(string) (registry.Registry, bool)) string {
	t.Helper()
	r, ok := lookup("local")
	if !ok {
		t.Fatal("the provider has no registry named local")
	}
	w, err := r.Watch(ctx, registry.Key{Interface: echotest.Service})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	for {
		snap, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("the provider never appeared in its registry: %v", err)
		}
		for _, c := range snap.Clusters() {
			if eps := c.Endpoints(); len(eps) > 0 {
				return eps[0].Address
			}
		}
	}
}

// serve runs one call through a provider's server filter with the TLS
// state cs (nil: plaintext) and the caller's attachments, and returns the
// provider's registry.
func serve(t *testing.T, cs *tls.ConnectionState, attachments call.Attachments) prometheus.Gatherer {
	t.Helper()
	m, err := istiometrics.New(istiometrics.WithWorkload(providerWorkload), istiometrics.WithServiceName(serviceName),
		istiometrics.WithTLSState(tlsStateOf))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := filter.NewServerChain(m.ServerFilter(0))
	if err != nil {
		t.Fatal(err)
	}
	run := chain.Unary(func(context.Context, *call.Info, any) (any, error) { return nil, nil })
	info := &call.Info{Service: echotest.Service, Method: "Echo", Attachments: attachments}
	if _, err := run(withTLSState(context.Background(), cs), info, nil); err != nil {
		t.Fatal(err)
	}
	return m.Registry()
}
