package identity_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/identity"
)

// exampleT lets a runnable example start the fake CA.
type exampleT struct{ cleanups []func() }

func (*exampleT) Helper()            {}
func (*exampleT) Fatal(args ...any)  { log.Fatal(args...) }
func (t *exampleT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// Get a workload certificate and use it for mutual TLS. In a pod the token
// and the root are at the default paths and the address is
// istiod.istio-system.svc:15012; here an in-process fake CA stands in.
func ExampleNew() {
	et := &exampleT{}
	defer et.done()
	ca := newFakeCA(et, time.Hour)
	ca.accept("projected-token", identity.ID{TrustDomain: "cluster.local", Namespace: "shop", ServiceAccount: "greeter"})
	dir, err := os.MkdirTemp("", "identity-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	token := filepath.Join(dir, "istio-token")
	if err := os.WriteFile(token, []byte("projected-token"), 0o600); err != nil {
		log.Fatal(err)
	}

	src, err := identity.New(context.Background(), ca.addr,
		identity.WithTokenFile(token),
		identity.WithRootPEM(ca.rootPEM),
		identity.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = src.Close() }()

	fmt.Println(src.ID())
	server := src.ServerTLSConfig(nil) // for a listener: requires a mesh client certificate
	fmt.Println(server.ClientAuth)
	// Output:
	// spiffe://cluster.local/ns/shop/sa/greeter
	// RequireAnyClientCert
}
