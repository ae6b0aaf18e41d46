package triple_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// peerRecorder is a server interceptor that keeps the Peer and CallInfo of
// the last call.
type peerRecorder struct {
	mu   sync.Mutex
	peer triple.Peer
	ci   triple.CallInfo
	ok   bool
}

func (r *peerRecorder) unary(ctx context.Context, req any, _ *triple.UnaryServerInfo, h triple.UnaryHandler) (any, error) {
	p, ok := triple.PeerFromContext(ctx)
	ci, _ := triple.CallInfoFromContext(ctx)
	r.mu.Lock()
	r.peer, r.ci, r.ok = p, ci, ok
	r.mu.Unlock()
	return h(ctx, req)
}

func (r *peerRecorder) last() (triple.Peer, triple.CallInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ci, ok := r.peer, r.ci, r.ok
	r.ok = false
	return p, ci, ok
}

// TestPeerFromContext: a server interceptor sees the client's and its own
// address, the TLS state on a TLS connection (nil on plaintext) and the
// call's authority, over gRPC, the triple flavour and HTTP/1.1 JSON.
func TestPeerFromContext(t *testing.T) {
	cert, pool := testCert(t)
	for _, secure := range []bool{false, true} {
		rec := &peerRecorder{}
		opts := []triple.ServerOption{triple.WithUnaryInterceptors(rec.unary)}
		clientOpts := []triple.ClientOption{}
		scheme := "http"
		hc := &http.Client{Timeout: 5 * time.Second}
		if secure {
			opts = append(opts, triple.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
			clientTLS := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			clientOpts = append(clientOpts, triple.WithTLS(clientTLS))
			scheme = "https"
			hc.Transport = &http.Transport{TLSClientConfig: clientTLS}
		}
		addr := startServer(t, opts, nil)
		check := func(name string) {
			t.Helper()
			p, ci, ok := rec.last()
			if !ok {
				t.Fatalf("%s secure=%v: no Peer in the call's context", name, secure)
			}
			if p.Addr == nil || !strings.HasPrefix(p.Addr.String(), "127.0.0.1:") || p.LocalAddr == nil || p.LocalAddr.String() != addr {
				t.Fatalf("%s secure=%v: Peer addresses %v -> %v, want 127.0.0.1:* -> %s", name, secure, p.Addr, p.LocalAddr, addr)
			}
			if (p.TLS != nil) != secure || (secure && !p.TLS.HandshakeComplete) {
				t.Fatalf("%s secure=%v: Peer.TLS = %+v", name, secure, p.TLS)
			}
			if ci.Authority != addr {
				t.Fatalf("%s secure=%v: CallInfo.Authority = %q, want %q", name, secure, ci.Authority, addr)
			}
		}
		for _, p := range []triple.Protocol{triple.ProtocolGRPC, triple.ProtocolTriple} {
			client := testpbtriple.NewEchoServiceClient(dial(t, addr, append(clientOpts, triple.WithProtocol(p))...))
			if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "hi"}); err != nil {
				t.Fatal(err)
			}
			check(p.String())
		}
		req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, scheme+"://"+addr+echoPath, strings.NewReader(`{"text":"json"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		hc.CloseIdleConnections()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("JSON secure=%v: HTTP %d", secure, resp.StatusCode)
		}
		check("json")
	}
}
