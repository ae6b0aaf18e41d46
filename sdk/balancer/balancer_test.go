package balancer_test

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func endpoints(weights ...uint32) []*mesh.Endpoint {
	eps := make([]*mesh.Endpoint, len(weights))
	for i, w := range weights {
		eps[i] = &mesh.Endpoint{Address: "10.0.0." + strconv.Itoa(i+1) + ":50051", Weight: w}
	}
	return eps
}

func handle(t testing.TB, b balancer.Builder, eps []*mesh.Endpoint) *balancer.Handle {
	t.Helper()
	h := balancer.NewHandle(b, balancer.BuildOptions{Target: "test"})
	if err := h.Update(balancer.State{Endpoints: eps}); err != nil {
		t.Fatal(err)
	}
	return h
}

// counts picks n times and returns the share of each endpoint by address.
func counts(t testing.TB, h *balancer.Handle, n int, info balancer.PickInfo) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		r, err := h.Pick(info)
		if err != nil {
			t.Fatal(err)
		}
		got[r.Endpoint.Address]++
		if r.Done != nil {
			r.Done(balancer.DoneInfo{})
		}
	}
	return got
}

// within fails unless each endpoint's share of n picks is within tol
// (absolute, as a fraction) of its weight share.
func within(t *testing.T, got map[string]int, eps []*mesh.Endpoint, n int, tol float64) {
	t.Helper()
	var total float64
	for _, e := range eps {
		total += float64(max(e.Weight, 1))
	}
	for _, e := range eps {
		want := float64(max(e.Weight, 1)) / total
		share := float64(got[e.Address]) / float64(n)
		if math.Abs(share-want) > tol {
			t.Errorf("%s: share %.4f, want %.4f ± %.3f (counts %v)", e.Address, share, want, tol, got)
		}
	}
}

func TestRoundRobinEqualWeightsIsExact(t *testing.T) {
	eps := endpoints(1, 1, 1)
	h := handle(t, balancer.RoundRobin(balancer.WithSeed(1)), eps)
	var seq []string
	for range 6 {
		r, _ := h.Pick(balancer.PickInfo{})
		seq = append(seq, r.Endpoint.Address)
	}
	if seq[0] == seq[1] || seq[1] == seq[2] || seq[0] != seq[3] || seq[1] != seq[4] || seq[2] != seq[5] {
		t.Errorf("sequence %v is not a cycle over 3 endpoints", seq)
	}
	got := counts(t, h, 3000, balancer.PickInfo{})
	within(t, got, eps, 3000, 0) // exact: 1000 each
}

func TestRoundRobinWeightedIsExactPerPeriodAndSmooth(t *testing.T) {
	eps := endpoints(1, 2, 5)
	h := handle(t, balancer.RoundRobin(balancer.WithSeed(2)), eps)
	var prev string
	run, maxRun := 0, 0
	got := map[string]int{}
	for range 8 * 1000 {
		r, _ := h.Pick(balancer.PickInfo{})
		got[r.Endpoint.Address]++
		if r.Endpoint.Address == prev {
			run++
		} else {
			run = 1
		}
		prev = r.Endpoint.Address
		maxRun = max(maxRun, run)
	}
	within(t, got, eps, 8000, 0)
	// Smooth: the heaviest endpoint (5 of 8) never runs more than twice in
	// a row, where a naive schedule would send it 5 calls back to back.
	if maxRun > 2 {
		t.Errorf("longest run on one endpoint = %d, want <= 2 for weights 1:2:5", maxRun)
	}
}

func TestRoundRobinHugeWeightsAreScaled(t *testing.T) {
	eps := endpoints(1_000_000, 3_000_000, 1)
	h := handle(t, balancer.RoundRobin(balancer.WithSeed(3)), eps)
	got := counts(t, h, 40000, balancer.PickInfo{})
	within(t, got, eps, 40000, 0.01)
	if got[eps[2].Address] == 0 {
		t.Error("an endpoint with a tiny weight must still get picks")
	}
}

func TestRandomWeightedDistribution(t *testing.T) {
	// 200k picks: the standard deviation of a share is below 0.0011, so a
	// tolerance of 0.005 (4.5 sigma) fails only on a real bias.
	eps := endpoints(1, 2, 7)
	h := handle(t, balancer.Random(balancer.WithSeed(4)), eps)
	within(t, counts(t, h, 200000, balancer.PickInfo{}), eps, 200000, 0.005)

	eq := endpoints(1, 1, 1, 1)
	h = handle(t, balancer.Random(balancer.WithSeed(5)), eq)
	within(t, counts(t, h, 200000, balancer.PickInfo{}), eq, 200000, 0.005)
}

func TestSeedsAreDeterministic(t *testing.T) {
	for _, b := range []func() balancer.Builder{
		func() balancer.Builder { return balancer.Random(balancer.WithSeed(42)) },
		func() balancer.Builder { return balancer.LeastRequest(balancer.WithSeed(42)) },
		func() balancer.Builder { return balancer.RoundRobin(balancer.WithSeed(42)) },
		func() balancer.Builder { return balancer.RingHash(balancer.WithSeed(42)) },
	} {
		name := b().Name()
		t.Run(name, func(t *testing.T) {
			eps := endpoints(1, 3, 1, 2, 1)
			seq := func() string {
				h := handle(t, b(), eps)
				var s strings.Builder
				for range 200 {
					r, _ := h.Pick(balancer.PickInfo{})
					s.WriteString(r.Endpoint.Address[7:8])
				}
				return s.String()
			}
			a, c := seq(), seq()
			if a != c {
				t.Errorf("same seed, different picks:\n%s\n%s", a, c)
			}
			if strings.Count(a, a[:1]) == len(a) {
				t.Errorf("all 200 picks on one endpoint: %s", a)
			}
		})
	}
}

func TestLeastRequestAvoidsBusyEndpoint(t *testing.T) {
	eps := endpoints(1, 1, 1, 1)
	h := handle(t, balancer.LeastRequest(balancer.WithSeed(6)), eps)
	// Occupy the first endpoint with 100 calls that do not end.
	var busy []balancer.PickResult
	for len(busy) < 100 {
		r, _ := h.Pick(balancer.PickInfo{})
		if r.Endpoint == eps[0] {
			busy = append(busy, r)
		} else {
			r.Done(balancer.DoneInfo{})
		}
	}
	got := counts(t, h, 40000, balancer.PickInfo{})
	// The busy endpoint wins only when both draws land on it: 1/16.
	if share := float64(got[eps[0].Address]) / 40000; math.Abs(share-1.0/16) > 0.01 {
		t.Errorf("busy endpoint share %.4f, want 0.0625 ± 0.01", share)
	}
	for _, e := range eps[1:] {
		if share := float64(got[e.Address]) / 40000; math.Abs(share-(1-1.0/16)/3) > 0.015 {
			t.Errorf("%s share %.4f, want %.4f ± 0.015", e.Address, share, (1-1.0/16)/3)
		}
	}
	// Counters survive a state update: the busy endpoint stays avoided
	// after a fifth endpoint joins.
	more := append(endpoints(1, 1, 1, 1, 1)[:0:0], eps...)
	more = append(more, &mesh.Endpoint{Address: "10.0.0.5:50051", Weight: 1})
	if err := h.Update(balancer.State{Endpoints: more}); err != nil {
		t.Fatal(err)
	}
	got = counts(t, h, 40000, balancer.PickInfo{})
	if share := float64(got[eps[0].Address]) / 40000; share > 1.0/25+0.01 {
		t.Errorf("after update busy endpoint share %.4f, want about 1/25", share)
	}
	for _, r := range busy {
		r.Done(balancer.DoneInfo{})
	}
	// With the load gone it gets its fair share again.
	within(t, counts(t, h, 50000, balancer.PickInfo{}), more, 50000, 0.01)
}

func TestLeastRequestHonoursWeights(t *testing.T) {
	// With every call still in flight, picks track (active+1)/weight, so
	// the shares follow the weights.
	eps := endpoints(1, 3)
	h := handle(t, balancer.LeastRequest(balancer.WithSeed(7)), eps)
	got := map[string]int{}
	for range 4000 {
		r, _ := h.Pick(balancer.PickInfo{})
		got[r.Endpoint.Address]++
	}
	within(t, got, eps, 4000, 0.02)
}

func ringInfo(key string) balancer.PickInfo {
	return balancer.PickInfo{Call: &call.Info{Attachments: call.Attachments{"x-user": key}}}
}

func ringOwners(t *testing.T, eps []*mesh.Endpoint, keys int) map[string]string {
	t.Helper()
	h := handle(t, balancer.RingHash(balancer.WithHashKey("x-user")), eps)
	owners := make(map[string]string, keys)
	for i := range keys {
		k := "user-" + strconv.Itoa(i)
		r, err := h.Pick(ringInfo(k))
		if err != nil {
			t.Fatal(err)
		}
		owners[k] = r.Endpoint.Address
	}
	return owners
}

func TestRingHashStability(t *testing.T) {
	eps := endpoints(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	before := ringOwners(t, eps, 10000)
	// Same key, same endpoint: on repeat and from an independent balancer
	// (another consumer process computes the same ring).
	again := ringOwners(t, eps, 10000)
	for k, a := range before {
		if again[k] != a {
			t.Fatalf("key %s: %s, then %s", k, a, again[k])
		}
	}
	// Spread: each of 10 equal endpoints owns 10% ± 4% of the keys with the
	// default 1024-point ring.
	per := map[string]int{}
	for _, a := range before {
		per[a]++
	}
	within(t, per, eps, 10000, 0.04)

	// Adding an 11th endpoint moves about 1/11 of the keys, all of them to
	// the new endpoint.
	added := &mesh.Endpoint{Address: "10.0.0.11:50051", Weight: 1}
	after := ringOwners(t, append(eps[:10:10], added), 10000)
	moved := 0
	for k, a := range before {
		if after[k] != a {
			moved++
			if after[k] != added.Address {
				t.Fatalf("key %s moved from %s to %s, not to the new endpoint", k, a, after[k])
			}
		}
	}
	if frac := float64(moved) / 10000; frac < 0.05 || frac > 0.14 {
		t.Errorf("%.3f of keys moved, want about 1/11 = 0.091 (0.05 to 0.14)", frac)
	}
}

func TestRingHashWeightsAndPolicy(t *testing.T) {
	eps := endpoints(1, 3)
	h := balancer.NewHandle(balancer.RingHash(), balancer.BuildOptions{Target: "t", LoadBalancer: &mesh.LoadBalancer{
		Kind:           mesh.LBRingHash,
		ConsistentHash: &mesh.ConsistentHash{Source: mesh.HashHeader, Name: "x-user", MinRingSize: 4096},
	}})
	if err := h.Update(balancer.State{Endpoints: eps}); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for i := range 20000 {
		r, _ := h.Pick(ringInfo(strconv.Itoa(i)))
		got[r.Endpoint.Address]++
	}
	within(t, got, eps, 20000, 0.03)
	// Without the key, calls spread at random over both endpoints.
	got = counts(t, h, 4000, balancer.PickInfo{Call: &call.Info{}})
	if len(got) != 2 {
		t.Errorf("keyless calls went to %v, want both endpoints", got)
	}
}

func TestPickersAvoidTriedEndpoints(t *testing.T) {
	for _, b := range []balancer.Builder{
		balancer.RoundRobin(balancer.WithSeed(8)), balancer.Random(balancer.WithSeed(8)),
		balancer.LeastRequest(balancer.WithSeed(8)), balancer.RingHash(balancer.WithHashKey("x-user"), balancer.WithSeed(8)),
	} {
		t.Run(b.Name(), func(t *testing.T) {
			eps := endpoints(1, 1, 1)
			h := handle(t, b, eps)
			for i := range 300 {
				info := ringInfo(strconv.Itoa(i))
				first, _ := h.Pick(info)
				info.Tried = []*mesh.Endpoint{first.Endpoint}
				second, _ := h.Pick(info)
				info.Tried = append(info.Tried, second.Endpoint)
				third, _ := h.Pick(info)
				if second.Endpoint == first.Endpoint || third.Endpoint == first.Endpoint || third.Endpoint == second.Endpoint {
					t.Fatalf("pick %d: %s, %s, %s: a tried endpoint was picked again while others remained",
						i, first.Endpoint.Address, second.Endpoint.Address, third.Endpoint.Address)
				}
				// All tried: a pick still succeeds.
				info.Tried = eps
				if r, err := h.Pick(info); err != nil || r.Endpoint == nil {
					t.Fatalf("all tried: %v, %v", r, err)
				}
				for _, r := range []balancer.PickResult{first, second, third} {
					if r.Done != nil {
						r.Done(balancer.DoneInfo{})
					}
				}
			}
		})
	}
}

func TestNoEndpointsIsUnavailable(t *testing.T) {
	for _, name := range balancer.Default.Names() {
		t.Run(name, func(t *testing.T) {
			b, err := balancer.Default.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			h := balancer.NewHandle(b, balancer.BuildOptions{Target: "greet.GreetService"})
			_, err = h.Pick(balancer.PickInfo{})
			if call.CodeOf(err) != call.Unavailable || !errors.Is(err, balancer.ErrNoReadyEndpoint) || !strings.Contains(err.Error(), "no state has arrived") {
				t.Errorf("before any state: %v", err)
			}
			if err := h.Update(balancer.State{}); err != nil {
				t.Fatal(err)
			}
			_, err = h.Pick(balancer.PickInfo{})
			if call.CodeOf(err) != call.Unavailable || !strings.Contains(err.Error(), "greet.GreetService") {
				t.Errorf("empty state: %v", err)
			}
		})
	}
}

func TestBadOptionsFailUpdateAndKeepPicker(t *testing.T) {
	tests := []struct {
		b    balancer.Builder
		want string
	}{
		{balancer.LeastRequest(balancer.WithChoiceCount(1)), "choice count 1"},
		{balancer.RingHash(balancer.WithRingSize(0, 10)), "ring size min 0"},
		{balancer.RingHash(balancer.WithRingSize(100, 10)), "need 0 < min <= max"},
	}
	for _, tt := range tests {
		h := balancer.NewHandle(tt.b, balancer.BuildOptions{Target: "t"})
		if err := h.Update(balancer.State{Endpoints: endpoints(1)}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Update error = %v, want %q", tt.b.Name(), err, tt.want)
		}
		if _, err := h.Pick(balancer.PickInfo{}); call.CodeOf(err) != call.Unavailable {
			t.Errorf("%s: after failed update Pick = %v, want the old picker's UNAVAILABLE", tt.b.Name(), err)
		}
	}
}

// TestUpdatesConcurrentWithPicks runs pickers against a stream of state
// updates; under -race it proves picks and updates share no unsynchronized
// state, and that every pick sees a complete state.
func TestUpdatesConcurrentWithPicks(t *testing.T) {
	states := [][]*mesh.Endpoint{endpoints(1, 2, 3), endpoints(5, 1), endpoints(1, 1, 1, 1, 1, 1)}
	for _, name := range balancer.Default.Names() {
		t.Run(name, func(t *testing.T) {
			b, _ := balancer.Default.Get(name)
			h := handle(t, b, states[0])
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 5000 {
						r, err := h.Pick(ringInfo(strconv.Itoa(g*5000 + i)))
						if err != nil || r.Endpoint == nil || !strings.HasPrefix(r.Endpoint.Address, "10.0.0.") {
							errs <- fmt.Errorf("pick %d: %v: %w", i, r, err)
							return
						}
						if r.Done != nil {
							r.Done(balancer.DoneInfo{})
						}
					}
				}()
			}
			for i := range 300 {
				if err := h.Update(balancer.State{Endpoints: states[i%len(states)]}); err != nil {
					t.Error(err)
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

type custom struct{}

func (custom) Name() string                                  { return "first" }
func (custom) Build(balancer.BuildOptions) balancer.Balancer { return nil }

func TestRegistry(t *testing.T) {
	r := balancer.NewRegistry(custom{})
	if _, err := r.Get("first"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(balancer.RoundRobinName); err == nil || !strings.Contains(err.Error(), "registered: first") {
		t.Errorf("instance registry must not see built-ins: %v", err)
	}
	for k, want := range map[mesh.LBKind]string{
		mesh.LBDefault: "round_robin", mesh.LBRoundRobin: "round_robin", mesh.LBRandom: "random",
		mesh.LBLeastRequest: "least_request", mesh.LBRingHash: "ring_hash",
	} {
		b, err := balancer.Default.ForKind(k)
		if err != nil || b.Name() != want {
			t.Errorf("ForKind(%s) = %v, %v; want %s", k, b, err, want)
		}
	}
	if _, err := balancer.Default.ForKind(mesh.LBMaglev); err == nil {
		t.Error("maglev is not built in; ForKind must say so")
	}
}
