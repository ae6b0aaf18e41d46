package promtest_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/observability/promtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestScrapesItself starts Prometheus scraping its own /metrics and waits
// until PromQL sees that target up.
func TestScrapesItself(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus server; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := promtest.Start(ctx, t)
	// The configuration names no target: nothing is scraped.
	if n, err := s.Value(ctx, `count(up)`); err != nil || n != 0 {
		t.Fatalf("count(up) with no target = %v, %v; want 0", n, err)
	}
	self := promtest.Start(ctx, t, s.Addr())
	var up []promtest.Sample
	self.Await(ctx, t, func(ctx context.Context) (bool, error) {
		var err error
		up, err = self.Query(ctx, `up{job="shoal"}`)
		return len(up) == 1 && up[0].Value == 1, err
	}, func() string { return "" })
	if got := promtest.ByLabel(up, "instance"); got[s.Addr()] != 1 {
		t.Errorf("up by instance = %v, want %s: 1", got, s.Addr())
	}
}
