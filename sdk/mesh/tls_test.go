package mesh_test

import (
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

func TestClusterTLS(t *testing.T) {
	greeter := "spiffe://cluster.local/ns/default/sa/greeter"
	canary := "spiffe://cluster.local/ns/default/sa/canary"
	svcTLS := &mesh.TLS{Mode: mesh.TLSIstioMutual, PeerIDs: []string{greeter}}
	spec := mesh.Spec{Services: []mesh.Service{{
		Name:      "greet.GreetService",
		Endpoints: []mesh.Endpoint{{Address: "10.0.0.1:50051"}},
		Policy:    mesh.ClusterPolicy{TLS: svcTLS},
		Subsets: []mesh.Subset{
			{Name: "v1", Endpoints: []mesh.Endpoint{{Address: "10.0.0.1:50051"}}},
			{Name: "canary", Endpoints: []mesh.Endpoint{{Address: "10.0.0.2:50051"}}, Policy: mesh.ClusterPolicy{TLS: &mesh.TLS{Mode: mesh.TLSIstioMutual, PeerIDs: []string{canary, greeter}}}},
			{Name: "plain", Endpoints: []mesh.Endpoint{{Address: "10.0.0.3:50051"}}, Policy: mesh.ClusterPolicy{TLS: &mesh.TLS{Mode: mesh.TLSDisable}}},
		},
	}}}
	snap, err := mesh.NewSnapshot(spec)
	if err != nil {
		t.Fatal(err)
	}
	tlsOf := func(subset string) *mesh.TLS {
		c, ok := snap.Cluster(mesh.Destination{Service: "greet.GreetService", Subset: subset})
		if !ok {
			t.Fatalf("no cluster for subset %q", subset)
		}
		return c.Policy().TLS
	}
	if got := tlsOf(""); !got.Secure() || got.Key() != "istio_mutual|"+greeter {
		t.Errorf("service TLS %+v key %q", got, got.Key())
	}
	if got := tlsOf("v1"); got.Key() != tlsOf("").Key() {
		t.Errorf("subset v1 TLS %+v, want the service's", got)
	}
	if got := tlsOf("canary"); got.Key() != "istio_mutual|"+canary+","+greeter {
		t.Errorf("subset canary key %q, want its own IDs, sorted", got.Key())
	}
	if got := tlsOf("plain"); got.Secure() || got.Key() != "" {
		t.Errorf("subset plain TLS %+v, want plaintext", got)
	}
	svcTLS.PeerIDs[0] = "spiffe://tampered"
	if got := tlsOf("").PeerIDs[0]; got != greeter {
		t.Errorf("snapshot TLS changed with its input: %s", got)
	}
	var none *mesh.TLS
	if none.Secure() || none.Key() != "" {
		t.Error("nil TLS is not plaintext")
	}
}

func TestClusterTLSValidation(t *testing.T) {
	_, err := mesh.NewSnapshot(mesh.Spec{Services: []mesh.Service{{
		Name:      "s",
		Endpoints: []mesh.Endpoint{{Address: "10.0.0.1:1"}},
		Policy:    mesh.ClusterPolicy{TLS: &mesh.TLS{Mode: 7, PeerIDs: []string{"greeter"}}},
	}}})
	if err == nil {
		t.Fatal("invalid TLS accepted")
	}
	for _, want := range []string{"services[0].policy.tls.mode: 7 is not a TLS mode", `services[0].policy.tls.peerIDs[0]: "greeter" is not a SPIFFE ID`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
