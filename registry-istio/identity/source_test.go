package identity_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	consumerID = identity.ID{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "consumer"}
	providerID = identity.ID{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "provider"}
)

// fastBackoff keeps retries short in tests.
var fastBackoff = identity.WithBackoff(mesh.Backoff{Base: time.Millisecond, Max: 20 * time.Millisecond})

// writeToken writes a token file, as the kubelet does, and returns its path.
func writeToken(t *testing.T, dir, token string) string {
	t.Helper()
	path := filepath.Join(dir, "istio-token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// logRecords is a slog handler keeping every record, for asserting on logs.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// count returns how many records at level contain msg.
func (l *logRecords) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == level && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

// updates returns an option sending every new certificate to the channel.
func updates() (identity.Option, <-chan *tls.Certificate) {
	ch := make(chan *tls.Certificate, 16)
	return identity.WithOnUpdate(func(c *tls.Certificate) {
		select {
		case ch <- c:
		default:
		}
	}), ch
}

// next waits for the next certificate, failing t after limit.
func next(t *testing.T, ch <-chan *tls.Certificate, limit time.Duration) *tls.Certificate {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(limit):
		t.Fatalf("no new certificate within %v", limit)
		return nil
	}
}

func newSource(t *testing.T, ca *fakeCA, tokenFile string, opts ...identity.Option) *identity.Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := append([]identity.Option{
		identity.WithRootPEM(ca.rootPEM), identity.WithTokenFile(tokenFile),
		identity.WithServerName(identity.DefaultServerName), fastBackoff,
		identity.WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)
	s, err := identity.New(ctx, ca.addr, all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestIssueAndMutualTLS gets certificates for two workloads from the fake
// CA and runs a TLS handshake between them with the package's server and
// client configurations: each side sees the other's SPIFFE ID, and a client
// expecting another identity refuses the server.
func TestIssueAndMutualTLS(t *testing.T) {
	ca := newFakeCA(t, time.Hour)
	dir := t.TempDir()
	ca.accept("consumer-token", consumerID)
	ca.accept("provider-token", providerID)
	consumer := newSource(t, ca, writeToken(t, t.TempDir(), "consumer-token"))
	provider := newSource(t, ca, writeToken(t, dir, "provider-token"))

	if got := consumer.ID(); got != consumerID {
		t.Fatalf("consumer ID = %v, want %v", got, consumerID)
	}
	if got := provider.ID(); got != providerID {
		t.Fatalf("provider ID = %v, want %v", got, providerID)
	}
	if n := len(consumer.Leaf().URIs); n != 1 || consumer.Leaf().URIs[0].String() != consumerID.String() {
		t.Fatalf("consumer leaf URIs = %v, want [%s]", consumer.Leaf().URIs, consumerID)
	}

	var serverSaw identity.ID
	srvCfg := provider.ServerTLSConfig(func(id identity.ID) error { serverSaw = id; return nil })
	if err := handshake(srvCfg, consumer.ClientTLSConfig(identity.AllowIDs(providerID))); err != nil {
		t.Fatalf("mutual TLS between consumer and provider: %v", err)
	}
	if serverSaw != consumerID {
		t.Fatalf("server saw client %v, want %v", serverSaw, consumerID)
	}

	err := handshake(provider.ServerTLSConfig(nil), consumer.ClientTLSConfig(identity.AllowIDs(consumerID)))
	if err == nil || !strings.Contains(err.Error(), providerID.String()) {
		t.Fatalf("client expecting %v accepted provider, or said nothing of it: %v", consumerID, err)
	}
}

// TestResumedConnectionsAreVerified: a resumed TLS session still runs the
// SPIFFE check (VerifyConnection), so a server that stops accepting an
// identity refuses a client resuming an earlier session.
func TestResumedConnectionsAreVerified(t *testing.T) {
	ca := newFakeCA(t, time.Hour)
	ca.accept("consumer-token", consumerID)
	ca.accept("provider-token", providerID)
	consumer := newSource(t, ca, writeToken(t, t.TempDir(), "consumer-token"))
	provider := newSource(t, ca, writeToken(t, t.TempDir(), "provider-token"))

	var mu sync.Mutex
	allowed, checks := true, 0
	srv := provider.ServerTLSConfig(func(id identity.ID) error {
		mu.Lock()
		defer mu.Unlock()
		checks++
		if !allowed {
			return errors.New("identity no longer allowed: " + id.String())
		}
		return nil
	})
	cli := consumer.ClientTLSConfig(identity.AllowIDs(providerID))
	cli.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	cli.ServerName = "provider" // the cache key; each handshake uses a new port
	if err := handshake(srv, cli); err != nil {
		t.Fatalf("first handshake: %v", err)
	}
	mu.Lock()
	allowed = false
	mu.Unlock()
	if err := handshake(srv, cli); err == nil {
		t.Fatal("a resumed session skipped the server's identity check")
	}
	mu.Lock()
	defer mu.Unlock()
	if checks != 2 {
		t.Fatalf("server identity checks = %d, want 2 (one per connection)", checks)
	}
}

// handshake runs a TLS handshake over loopback TCP and returns the
// client's error, else the server's.
func handshake(server, client *tls.Config) error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer func() { _ = lis.Close() }()
	srvErr := make(chan error, 1)
	go func() {
		conn, err := lis.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer func() { _ = conn.Close() }()
		s := tls.Server(conn, server)
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		err = s.Handshake()
		if err == nil {
			// Send a byte (the client reads it, and with it TLS 1.3's
			// session ticket), then wait for the client to close: a TLS 1.3
			// server finishes before the client has checked its certificate.
			_, _ = s.Write([]byte{1})
			_, _ = s.Read(make([]byte, 1))
		}
		srvErr <- err
	}()
	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		return err
	}
	c := tls.Client(conn, client)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cerr := c.Handshake()
	if cerr == nil {
		_, cerr = c.Read(make([]byte, 1))
	}
	_ = c.Close()
	serr := <-srvErr
	if cerr != nil {
		return cerr
	}
	return serr
}

// TestRotation has the fake CA issue short-lived certificates and checks
// that the source renews them by itself, with a new key each time, reading
// the token file again for each request (the kubelet rotates it).
func TestRotation(t *testing.T) {
	ca := newFakeCA(t, 3*time.Second)
	ca.accept("token-1", consumerID)
	ca.accept("token-2", consumerID)
	dir := t.TempDir()
	onUpdate, ch := updates()
	s := newSource(t, ca, writeToken(t, dir, "token-1"), onUpdate)
	first := next(t, ch, time.Second) // the one New got

	writeToken(t, dir, "token-2")
	second := next(t, ch, 30*time.Second)
	third := next(t, ch, 30*time.Second)
	for i, c := range []*tls.Certificate{second, third} {
		if c.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
			t.Fatalf("renewal %d kept the first certificate", i+1)
		}
		if c.PrivateKey == first.PrivateKey {
			t.Fatalf("renewal %d kept the first key", i+1)
		}
	}
	cur, err := s.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if cur.Leaf.SerialNumber.Cmp(third.Leaf.SerialNumber) != 0 && cur.Leaf.NotAfter.Before(third.Leaf.NotAfter) {
		t.Fatalf("source serves a certificate older than the last renewal")
	}
	_, seen := ca.stats()
	if len(seen) < 3 || seen[0] != "token-1" || seen[len(seen)-1] != "token-2" {
		t.Fatalf("tokens sent = %v; want token-1 first, then the rewritten token-2", seen)
	}
}

// TestStartupBackoff has the fake CA answer Unavailable three times:
// New retries with the backoff and succeeds on the fourth request, logging
// each failure.
func TestStartupBackoff(t *testing.T) {
	ca := newFakeCA(t, time.Hour)
	ca.accept("token", consumerID)
	ca.setFailNext(3)
	logs := &logRecords{}
	s := newSource(t, ca, writeToken(t, t.TempDir(), "token"), identity.WithLogger(slog.New(logs)))
	if s.ID() != consumerID {
		t.Fatalf("ID = %v, want %v", s.ID(), consumerID)
	}
	if n, _ := ca.stats(); n != 4 {
		t.Fatalf("requests = %d, want 4 (3 refused, then success)", n)
	}
	if n := logs.count(slog.LevelWarn, "did not answer; retrying"); n != 3 {
		t.Fatalf("retry warnings = %d, want 3", n)
	}
}

// TestStartupGivesUpWithContext: with istiod away for good, New returns
// when its context ends, naming istiod's address and its last answer.
func TestStartupGivesUpWithContext(t *testing.T) {
	ca := newFakeCA(t, time.Hour)
	ca.accept("token", consumerID)
	ca.setDown(true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { // end New's context once the CA has refused twice
		for ctx.Err() == nil {
			if n, _ := ca.stats(); n >= 2 {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err := identity.New(ctx, ca.addr, identity.WithRootPEM(ca.rootPEM),
		identity.WithTokenFile(writeToken(t, t.TempDir(), "token")), fastBackoff,
		identity.WithLogger(slog.New(slog.DiscardHandler)))
	if err == nil || !strings.Contains(err.Error(), ca.addr) || !strings.Contains(err.Error(), "fake CA is down") || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("New with istiod away: %v; want an error naming %s and its answer", err, ca.addr)
	}
}

// TestServesUntilExpiry takes the fake CA away after the first
// certificate: the source keeps serving it (logging each failed renewal)
// until it expires, then refuses with an error and logs the expiry once;
// when the CA returns, a new certificate is served again.
func TestServesUntilExpiry(t *testing.T) {
	ca := newFakeCA(t, 3*time.Second)
	ca.accept("token", consumerID)
	logs := &logRecords{}
	onUpdate, ch := updates()
	s := newSource(t, ca, writeToken(t, t.TempDir(), "token"), identity.WithLogger(slog.New(logs)), onUpdate,
		identity.WithBackoff(mesh.Backoff{Base: 50 * time.Millisecond, Max: 200 * time.Millisecond}))
	first := next(t, ch, time.Second)
	ca.setDown(true)

	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var c *tls.Certificate
		if c, err = s.Certificate(); err != nil {
			break
		}
		if c != first {
			t.Fatal("the certificate changed while the CA was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), ca.addr) {
		t.Fatalf("after expiry Certificate() = %v; want an error saying it expired and naming istiod", err)
	}
	if _, herr := s.GetCertificate(nil); herr == nil {
		t.Fatal("GetCertificate served an expired certificate")
	}
	if n := logs.count(slog.LevelWarn, "serving the current certificate until it expires"); n == 0 {
		t.Fatal("no warning logged while renewals failed before expiry")
	}
	// The expiry is logged once, after the certificate's NotAfter.
	for time.Now().Before(deadline) && logs.count(slog.LevelError, "expired") == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if n := logs.count(slog.LevelError, "expired"); n != 1 {
		t.Fatalf("expiry errors logged = %d, want 1", n)
	}

	ca.setDown(false)
	renewed := next(t, ch, 30*time.Second)
	if renewed.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("the renewal after the CA came back is the expired certificate")
	}
	if _, err := s.Certificate(); err != nil {
		t.Fatalf("after the CA came back: %v", err)
	}
}

// TestBadToken: a token the CA refuses, or a missing token file, fails New
// at once with an error naming the token file and the CA's reason.
func TestBadToken(t *testing.T) {
	ca := newFakeCA(t, time.Hour)
	ca.accept("good", consumerID)
	dir := t.TempDir()
	bad := writeToken(t, dir, "not-a-token-istiod-knows")
	missing := filepath.Join(dir, "absent", "istio-token")
	for _, tc := range []struct {
		name, file string
		want       []string
		requests   int
	}{
		{"refused", bad, []string{bad, "request authenticate failure", "Unauthenticated", identity.TokenAudience}, 1},
		{"missing file", missing, []string{missing, "WithTokenFile"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := ca.stats()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := identity.New(ctx, ca.addr, identity.WithRootPEM(ca.rootPEM), identity.WithTokenFile(tc.file),
				fastBackoff, identity.WithLogger(slog.New(slog.DiscardHandler)))
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if after, _ := ca.stats(); after-before != tc.requests {
				t.Errorf("requests = %d, want %d (a refusal is not retried)", after-before, tc.requests)
			}
		})
	}
}

// TestConfigErrors: roots that cannot be read fail New before any request.
func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		opts []identity.Option
		want string
	}{
		{"no root file", []identity.Option{identity.WithRootCertFile(filepath.Join(dir, "root-cert.pem"))}, "istio-ca-root-cert"},
		{"root not PEM", []identity.Option{identity.WithRootPEM([]byte("nope"))}, "no PEM certificate"},
		{"no token file", []identity.Option{identity.WithRootPEM([]byte("nope")), identity.WithTokenFile("")}, "WithTokenFile"},
		{"negative TTL", []identity.Option{identity.WithTTL(-time.Second)}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := identity.New(ctx, "127.0.0.1:1", tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
