package cluster_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/cluster"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func handle(t testing.TB, n int) *balancer.Handle {
	t.Helper()
	eps := make([]*mesh.Endpoint, n)
	for i := range eps {
		eps[i] = &mesh.Endpoint{Address: "10.0.0." + strconv.Itoa(i+1) + ":1", Weight: 1}
	}
	h := balancer.NewHandle(balancer.RoundRobin(balancer.WithSeed(1)), balancer.BuildOptions{Target: "test"})
	if err := h.Update(balancer.State{Endpoints: eps}); err != nil {
		t.Fatal(err)
	}
	return h
}

// fake answers per endpoint address; it records the tries.
type fake struct {
	mu     sync.Mutex
	tries  []string
	answer func(ctx context.Context, addr string) error
}

func (f *fake) invoke(ctx context.Context, ep *mesh.Endpoint, _ *call.Info, _, _ any) error {
	f.mu.Lock()
	f.tries = append(f.tries, ep.Address)
	f.mu.Unlock()
	return f.answer(ctx, ep.Address)
}

func distinct(s []string) bool {
	seen := map[string]bool{}
	for _, x := range s {
		if seen[x] {
			return false
		}
		seen[x] = true
	}
	return true
}

var info = &call.Info{Service: "greet.GreetService", Method: "Greet"}

func TestFailfastTriesOnce(t *testing.T) {
	f := &fake{answer: func(context.Context, string) error { return call.Errorf(call.Unavailable, "down") }}
	err := cluster.Failfast().Invoke(context.Background(), info, handle(t, 3), nil, nil, f.invoke)
	if call.CodeOf(err) != call.Unavailable || len(f.tries) != 1 {
		t.Errorf("err %v after %d tries, want UNAVAILABLE after 1", err, len(f.tries))
	}
}

func TestFailover(t *testing.T) {
	unavailable := call.Errorf(call.Unavailable, "down")
	tests := []struct {
		name      string
		opts      []cluster.Option
		failFirst int   // the first n tries fail with err
		err       error // what failing tries return
		wantTries int
		wantCode  call.Code
	}{
		{"succeeds on the second endpoint", nil, 1, unavailable, 2, call.OK},
		{"gives up after retries", nil, 99, unavailable, 3, call.Unavailable},
		{"more retries", []cluster.Option{cluster.WithRetries(4)}, 4, unavailable, 5, call.OK},
		{"no retries", []cluster.Option{cluster.WithRetries(0)}, 99, unavailable, 1, call.Unavailable},
		{"business errors are not retried", nil, 99, call.Errorf(call.InvalidArgument, "bad name"), 1, call.InvalidArgument},
		{"unknown errors are not retried", nil, 99, errors.New("boom"), 1, call.Unknown},
		{"connect failures are retried", nil, 1, &call.Error{Code: call.Unavailable, Connect: true}, 2, call.OK},
		{"custom retryOn", []cluster.Option{cluster.WithRetryOn(mesh.RetryOn{}.WithCodes(call.Internal))}, 1, call.Errorf(call.Internal, "x"), 2, call.OK},
		{"custom retryOn excludes unavailable", []cluster.Option{cluster.WithRetryOn(mesh.RetryOn{}.WithCodes(call.Internal))}, 1, unavailable, 1, call.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			f := &fake{answer: func(context.Context, string) error {
				n++
				if n <= tt.failFirst {
					return tt.err
				}
				return nil
			}}
			opts := append([]cluster.Option{cluster.WithBackoff(mesh.Backoff{Base: time.Microsecond}), cluster.WithSeed(1)}, tt.opts...)
			err := cluster.Failover(opts...).Invoke(context.Background(), info, handle(t, 5), nil, nil, f.invoke)
			if len(f.tries) != tt.wantTries || call.CodeOf(err) != tt.wantCode {
				t.Fatalf("%d tries, err %v (code %s); want %d tries, code %s", len(f.tries), err, call.CodeOf(err), tt.wantTries, tt.wantCode)
			}
			if !distinct(f.tries) {
				t.Errorf("tries %v reused an endpoint while others were left", f.tries)
			}
			if tt.wantTries > 1 && err != nil && !strings.Contains(err.Error(), "after "+strconv.Itoa(tt.wantTries)+" tries") {
				t.Errorf("error %q does not say how many tries were made", err)
			}
		})
	}
}

func TestFailoverPerTryTimeout(t *testing.T) {
	f := &fake{answer: func(ctx context.Context, addr string) error {
		if addr == "10.0.0.1:1" || addr == "10.0.0.2:1" { // hang until the try's deadline
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}}
	h := handle(t, 3)
	// Round robin from a seeded start: make sure the first try hangs.
	for {
		r, _ := h.Pick(balancer.PickInfo{})
		if r.Endpoint.Address == "10.0.0.3:1" {
			break
		}
	}
	start := time.Now()
	err := cluster.Failover(cluster.WithPerTryTimeout(20*time.Millisecond), cluster.WithBackoff(mesh.Backoff{Base: time.Microsecond})).
		Invoke(context.Background(), info, h, nil, nil, f.invoke)
	if err != nil || len(f.tries) != 3 {
		t.Fatalf("err %v after tries %v, want success on the third endpoint", err, f.tries)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Errorf("took %s, want two per-try timeouts of 20ms", d)
	}
}

func TestFailoverStopsAtCallDeadline(t *testing.T) {
	f := &fake{answer: func(ctx context.Context, _ string) error { <-ctx.Done(); return ctx.Err() }}
	ctx, cancel := cluster.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := cluster.Failover(cluster.WithPerTryTimeout(time.Second)).Invoke(ctx, info, handle(t, 3), nil, nil, f.invoke)
	if call.CodeOf(err) != call.DeadlineExceeded || len(f.tries) != 1 {
		t.Errorf("err %v after %d tries, want DEADLINE_EXCEEDED after 1", err, len(f.tries))
	}
}

// TestFailoverStopsAtInfoDeadline: the consumer's timeout travels as
// call.Info.Deadline, not on ctx; failover neither retries past it nor
// sleeps a backoff beyond it.
func TestFailoverStopsAtInfoDeadline(t *testing.T) {
	down := &fake{answer: func(context.Context, string) error { return call.Errorf(call.Unavailable, "down") }}
	timed := &call.Info{Service: "greet.GreetService", Method: "Greet", Deadline: time.Now().Add(30 * time.Millisecond)}
	start := time.Now()
	err := cluster.Failover(cluster.WithBackoff(mesh.Backoff{Base: time.Hour, Max: time.Hour}), cluster.WithSeed(3)).
		Invoke(context.Background(), timed, handle(t, 3), nil, nil, down.invoke)
	if call.CodeOf(err) != call.DeadlineExceeded || len(down.tries) != 1 {
		t.Errorf("backoff past the deadline: %v after %d tries, want DEADLINE_EXCEEDED after 1", err, len(down.tries))
	}
	if d := time.Since(start); d < 25*time.Millisecond || d > 5*time.Second {
		t.Errorf("backoff past the deadline: ended after %s, want at the 30ms deadline", d)
	}

	// A try that runs into the deadline (as a DeadlineConn ends it) is the
	// last, even under a per-try timeout that would retry.
	var timedOut *call.Info
	hang := &fake{answer: func(context.Context, string) error {
		time.Sleep(time.Until(timedOut.Deadline))
		return call.Errorf(call.DeadlineExceeded, "deadline")
	}}
	timedOut = &call.Info{Service: "greet.GreetService", Method: "Greet", Deadline: time.Now().Add(20 * time.Millisecond)}
	err = cluster.Failover(cluster.WithPerTryTimeout(time.Second), cluster.WithRetryOn(mesh.RetryOn{}.WithCodes(call.DeadlineExceeded))).
		Invoke(context.Background(), timedOut, handle(t, 3), nil, nil, hang.invoke)
	if call.CodeOf(err) != call.DeadlineExceeded || len(hang.tries) != 1 {
		t.Errorf("try into the deadline: %v after %d tries, want DEADLINE_EXCEEDED after 1", err, len(hang.tries))
	}
}

func TestDeadline(t *testing.T) {
	if !cluster.Deadline(context.Background(), 0).IsZero() {
		t.Error("no timeout: want no deadline")
	}
	before := time.Now()
	if dl := cluster.Deadline(context.Background(), time.Second); dl.Before(before.Add(time.Second)) || dl.After(time.Now().Add(time.Second)) {
		t.Errorf("1s timeout: deadline %s, want a second from now", dl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if !cluster.Deadline(ctx, time.Hour).IsZero() {
		t.Error("a context deadline that comes first: want no deadline of its own")
	}
}

func TestFailoverBackoffHonoursCancel(t *testing.T) {
	f := &fake{answer: func(context.Context, string) error { return call.Errorf(call.Unavailable, "down") }}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	start := time.Now()
	err := cluster.Failover(cluster.WithBackoff(mesh.Backoff{Base: time.Hour, Max: time.Hour}), cluster.WithSeed(3)).
		Invoke(ctx, info, handle(t, 3), nil, nil, f.invoke)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("err %v after %s, want a prompt context.Canceled", err, time.Since(start))
	}
}

func TestPickErrorsAreReturned(t *testing.T) {
	h := balancer.NewHandle(balancer.RoundRobin(), balancer.BuildOptions{Target: "greet.GreetService"})
	f := &fake{answer: func(context.Context, string) error { return nil }}
	for _, s := range []*cluster.Strategy{cluster.Failfast(), cluster.Failover()} {
		if err := s.Invoke(context.Background(), info, h, nil, nil, f.invoke); call.CodeOf(err) != call.Unavailable {
			t.Errorf("%s with no endpoints: %v", s.Name(), err)
		}
	}
	if len(f.tries) != 0 {
		t.Errorf("invoked %v without an endpoint", f.tries)
	}
}

func TestDoneIsCalledForEveryTry(t *testing.T) {
	h := balancer.NewHandle(balancer.LeastRequest(balancer.WithSeed(2)), balancer.BuildOptions{})
	eps := []*mesh.Endpoint{{Address: "a:1"}, {Address: "b:1"}}
	if err := h.Update(balancer.State{Endpoints: eps}); err != nil {
		t.Fatal(err)
	}
	// Every try fails on a; if Done were skipped, a's in-flight count would
	// grow and least-request would stop picking it. With Done, a keeps
	// getting about half of the first tries.
	onA := 0
	for range 400 {
		first := true
		f := &fake{answer: func(_ context.Context, addr string) error {
			if first && addr == "a:1" {
				onA++
			}
			first = false
			if addr == "a:1" {
				return call.Errorf(call.Unavailable, "down")
			}
			return nil
		}}
		if err := cluster.Failover(cluster.WithBackoff(mesh.Backoff{Base: time.Nanosecond})).Invoke(context.Background(), info, h, nil, nil, f.invoke); err != nil {
			t.Fatal(err)
		}
	}
	if onA < 120 || onA > 280 {
		t.Errorf("a was tried first %d times of 400, want about 200", onA)
	}
}

func TestFromRetryPolicy(t *testing.T) {
	if s := cluster.FromRetryPolicy(nil); s.Name() != "failfast" {
		t.Errorf("nil policy: %s", s.Name())
	}
	if s := cluster.FromRetryPolicy(&mesh.RetryPolicy{}); s.Name() != "failfast" {
		t.Errorf("zero attempts: %s", s.Name())
	}
	on, _ := mesh.ParseRetryOn("internal")
	s := cluster.FromRetryPolicy(&mesh.RetryPolicy{Attempts: 1, On: on, Backoff: mesh.Backoff{Base: time.Microsecond}})
	n := 0
	f := &fake{answer: func(context.Context, string) error { n++; return call.Errorf(call.Internal, "x") }}
	_ = s.Invoke(context.Background(), info, handle(t, 3), nil, nil, f.invoke)
	if s.Name() != "failover" || n != 2 {
		t.Errorf("%s made %d tries, want failover with 2", s.Name(), n)
	}
}

func TestWithTimeout(t *testing.T) {
	ctx, cancel := cluster.WithTimeout(context.Background(), 0)
	defer cancel()
	if _, ok := ctx.Deadline(); ok {
		t.Error("timeout 0 set a deadline")
	}
	parent, cancelParent := context.WithTimeout(context.Background(), time.Second)
	defer cancelParent()
	ctx2, cancel2 := cluster.WithTimeout(parent, time.Hour)
	defer cancel2()
	if ctx2 != parent {
		t.Error("a longer timeout replaced an earlier deadline")
	}
	ctx3, cancel3 := cluster.WithTimeout(parent, time.Millisecond)
	defer cancel3()
	if dl, _ := ctx3.Deadline(); time.Until(dl) > time.Millisecond {
		t.Error("a shorter timeout was not applied")
	}
}

func BenchmarkFailoverSuccess(b *testing.B) {
	h := handle(b, 10)
	invoke := func(context.Context, *mesh.Endpoint, *call.Info, any, any) error { return nil }
	s := cluster.Failover()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Invoke(ctx, info, h, nil, nil, invoke); err != nil {
			b.Fatal(err)
		}
	}
}
