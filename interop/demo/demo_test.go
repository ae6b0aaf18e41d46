package demo_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/internal/e2etest"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/interop/demo"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, e2etest.IgnoreControlPlane...)
}

// TestDemo runs `make demo`'s job with short phases and checks what it
// promises: every shift reaches the consumer, the calls follow the split,
// and no call fails.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo: control plane, containers, Java; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := demo.Run(ctx, demo.Options{Out: &out, RepoRoot: root, Phase: 2 * time.Second, Rate: 100, MinCalls: 300})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.Calls < 500 {
		t.Errorf("%d of %d calls failed (first: %s); want many calls and no failure", res.Failed, res.Calls, res.FirstError)
	}
	if len(res.Phases) != len(demo.Plan) {
		t.Fatalf("%d phases ran, want %d", len(res.Phases), len(demo.Plan))
	}
	for i, ph := range res.Phases {
		total := 0
		for _, n := range ph.Served {
			total += n
		}
		if total == 0 {
			t.Errorf("phase %d (%v): no call served", i, ph.Weights)
			continue
		}
		for _, s := range demo.Subsets {
			want := float64(ph.Weights[s]) / 100
			got := float64(ph.Served[s]) / float64(total)
			// At least 300 calls per phase (MinCalls): a binomial spread
			// of at most 2.9 points at 50/50; 12 points of tolerance is
			// over four standard deviations, with room for the calls of
			// the switch itself.
			if got < want-0.12 || got > want+0.12 {
				t.Errorf("phase %d (%v): %s served %.0f%% of %d calls, want %.0f%%", i, ph.Weights, s, 100*got, total, 100*want)
			}
		}
		if i > 0 && ph.Followed <= 0 {
			t.Errorf("phase %d: no follow time measured", i)
		}
	}
}
