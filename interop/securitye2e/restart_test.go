package securitye2e_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// warnings is a slog handler counting warning messages, for asserting
// on what the Source logs.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) count(sub string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, m := range w.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

// testRenewalAcrossIstiodRestart kills istiod while a workload holds a
// 20-second certificate: renewals fail and are logged while the current
// certificate keeps serving; once istiod is back on the same address, the
// Source renews by itself, with the same identity and root.
func testRenewalAcrossIstiodRestart(ctx context.Context, t *testing.T, m *localmesh.Mesh) {
	w := newWorkload(ctx, t, m, "survivor")
	logs := &warnings{}
	got := make(chan *tls.Certificate, 8)
	s, err := w.source(ctx, m, identity.WithTTL(20*time.Second),
		identity.WithBackoff(mesh.Backoff{Base: 100 * time.Millisecond, Max: time.Second}),
		identity.WithLogger(slog.New(logs)),
		identity.WithOnUpdate(func(c *tls.Certificate) {
			select {
			case got <- c:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	first := <-got

	if err := m.StopIstiod(0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) && logs.count("renewal failed; serving the current certificate") == 0 {
		time.Sleep(100 * time.Millisecond)
	}
	if logs.count("renewal failed; serving the current certificate") == 0 {
		t.Fatal("no failed renewal logged within 40s of stopping istiod")
	}
	cur, err := s.Certificate()
	if err != nil {
		t.Fatalf("with istiod away and the certificate still valid: %v", err)
	}
	if cur.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) != 0 {
		t.Fatal("the certificate changed while istiod was away")
	}

	if err := m.StartIstiod(ctx, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case next := <-got:
		if next.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
			t.Fatal("the renewal after the restart is the first certificate")
		}
	case <-time.After(time.Minute):
		t.Fatal("no renewal within a minute of istiod's restart")
	}
	if s.ID() != w.id() {
		t.Fatalf("ID after restart = %v, want %v", s.ID(), w.id())
	}
	assertChainedToConfigMapRoot(ctx, t, m, s)
}
