package identity_test

import (
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// TestClusterTLS: the client configuration for an ISTIO_MUTUAL cluster
// completes mutual TLS with a server whose identity the cluster lists (or
// any mesh workload when it lists none) and refuses one it does not list,
// naming both.
func TestClusterTLS(t *testing.T) {
	ca := newFakeCA(t, time.Hour)
	ca.accept("consumer-token", consumerID)
	ca.accept("provider-token", providerID)
	consumer := newSource(t, ca, writeToken(t, t.TempDir(), "consumer-token"))
	provider := newSource(t, ca, writeToken(t, t.TempDir(), "provider-token"))
	server := provider.ServerTLSConfig(nil)

	for _, tc := range []struct {
		name    string
		tls     *mesh.TLS
		wantErr string
	}{
		{name: "listed", tls: &mesh.TLS{Mode: mesh.TLSIstioMutual, PeerIDs: []string{consumerID.String(), providerID.String()}}},
		{name: "no list: any workload of the mesh", tls: &mesh.TLS{Mode: mesh.TLSIstioMutual}},
		{name: "not listed", tls: &mesh.TLS{Mode: mesh.TLSIstioMutual, PeerIDs: []string{consumerID.String()}}, wantErr: "the server presented " + providerID.String() + ", which is not among the identities istiod lists for this cluster [" + consumerID.String() + "]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := consumer.ClusterTLS(tc.tls)
			if err != nil {
				t.Fatal(err)
			}
			err = handshake(server, cfg)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("handshake error %v, want %q", err, tc.wantErr)
			}
		})
	}

	for _, bad := range []*mesh.TLS{nil, {Mode: mesh.TLSDisable}, {Mode: mesh.TLSIstioMutual, PeerIDs: []string{"greeter"}}} {
		if _, err := consumer.ClusterTLS(bad); err == nil {
			t.Errorf("ClusterTLS(%+v) succeeded", bad)
		}
	}
}
