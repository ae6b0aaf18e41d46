package triple_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// deadlineEcho answers with how long the server's context had left.
type deadlineEcho struct {
	testpbtriple.UnimplementedEchoServiceHandler
}

func (deadlineEcho) Echo(ctx context.Context, req *testpb.EchoRequest) (*testpb.EchoResponse, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return &testpb.EchoResponse{Text: "none"}, nil
	}
	return &testpb.EchoResponse{Text: time.Until(dl).String(), Payload: req.GetPayload()}, nil
}

func TestWithDeadlineSendsGRPCTimeout(t *testing.T) {
	addr := startServer(t, nil, func(s *triple.Server) { _ = testpbtriple.RegisterEchoServiceHandler(s, deadlineEcho{}) })
	client := testpbtriple.NewEchoServiceClient(dial(t, addr))
	left := func(resp *testpb.EchoResponse, err error) time.Duration {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		d, err := time.ParseDuration(resp.GetText())
		if err != nil {
			t.Fatalf("the server saw no deadline (%q)", resp.GetText())
		}
		return d
	}
	if d := left(client.Echo(context.Background(), &testpb.EchoRequest{}, triple.WithDeadline(time.Now().Add(2*time.Second)))); d <= 0 || d > 2*time.Second {
		t.Errorf("WithDeadline(2s): the server had %s left", d)
	}
	if d := left(client.Echo(context.Background(), &testpb.EchoRequest{}, triple.WithTimeout(time.Second))); d <= 0 || d > time.Second {
		t.Errorf("WithTimeout(1s): the server had %s left", d)
	}
	// The earlier bound wins, whichever carries it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if d := left(client.Echo(ctx, &testpb.EchoRequest{}, triple.WithDeadline(time.Now().Add(time.Hour)))); d > time.Second {
		t.Errorf("context 1s, option 1h: the server had %s left", d)
	}
	if d := left(client.Echo(context.Background(), &testpb.EchoRequest{}, triple.WithDeadline(time.Now().Add(time.Hour)), triple.WithTimeout(time.Second))); d > time.Second {
		t.Errorf("option 1h and timeout 1s: the server had %s left", d)
	}
	resp, err := client.Echo(context.Background(), &testpb.EchoRequest{}, &triple.Deadline{})
	if err != nil || resp.GetText() != "none" {
		t.Errorf("zero Deadline: %v, %v; want no deadline", resp.GetText(), err)
	}
}

func TestWithDeadlineEndsSlowCall(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	start := time.Now()
	_, err := client.Echo(context.Background(), &testpb.EchoRequest{SleepMs: 5000}, triple.WithDeadline(time.Now().Add(50*time.Millisecond)))
	if triple.CodeOf(err) != triple.CodeDeadlineExceeded || time.Since(start) > 2*time.Second {
		t.Fatalf("slow call: %v after %s, want DEADLINE_EXCEEDED after 50ms", err, time.Since(start))
	}
	// A deadline already past fails at once, connected or not.
	_, err = client.Echo(context.Background(), &testpb.EchoRequest{}, triple.WithDeadline(time.Now().Add(-time.Second)))
	if triple.CodeOf(err) != triple.CodeDeadlineExceeded {
		t.Fatalf("past deadline: %v", err)
	}
	fresh := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	_, err = fresh.Echo(context.Background(), &testpb.EchoRequest{}, triple.WithDeadline(time.Now().Add(-time.Second)))
	if triple.CodeOf(err) != triple.CodeDeadlineExceeded {
		t.Fatalf("past deadline, not yet dialed: %v", err)
	}
	// One Deadline reused call after call, as the sdk does.
	dl := &triple.Deadline{}
	for i := range 3 {
		dl.At = time.Now().Add(time.Second)
		if _, err := client.Echo(context.Background(), &testpb.EchoRequest{Text: "again"}, dl); err != nil {
			t.Fatalf("reused deadline, call %d: %v", i, err)
		}
	}
}

// TestWithDeadlineRaces runs calls whose deadline lands around the time
// the answer does: each ends either well or with DEADLINE_EXCEEDED, and
// the connection keeps serving (run with -race).
func TestWithDeadlineRaces(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			d := time.Duration(i%20) * 100 * time.Microsecond
			_, err := client.Echo(context.Background(), &testpb.EchoRequest{SleepMs: int32(i % 2)}, triple.WithDeadline(time.Now().Add(d)))
			if err != nil && triple.CodeOf(err) != triple.CodeDeadlineExceeded {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call ended with %v, want OK or DEADLINE_EXCEEDED", err)
	}
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "after"}); err != nil {
		t.Fatal(err)
	}
}

// TestWithDeadlineAllocations pins the cost of a deadline option: at
// least three allocations fewer than the same deadline on a derived
// context (the grpc-timeout header and the server's own deadline, in this
// process too, cost the same either way).
func TestWithDeadlineAllocations(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	req := &testpb.EchoRequest{Text: "x"}
	dl := &triple.Deadline{}
	opts := []triple.CallOption{dl}
	call := func(ctx context.Context, opts ...triple.CallOption) {
		if _, err := client.Echo(ctx, req, opts...); err != nil {
			t.Fatal(err)
		}
	}
	bg := context.Background()
	call(bg) // connect
	none := testing.AllocsPerRun(200, func() { call(bg) })
	option := testing.AllocsPerRun(200, func() {
		dl.At = time.Now().Add(3 * time.Second)
		call(bg, opts...)
	})
	derived := testing.AllocsPerRun(200, func() {
		ctx, cancel := context.WithTimeout(bg, 3*time.Second)
		call(ctx)
		cancel()
	})
	t.Logf("allocations per call: %.0f without a deadline, %.0f with a Deadline option, %.0f with a context deadline", none, option, derived)
	if option+3 > derived {
		t.Errorf("a Deadline option costs %.0f allocations, a derived context %.0f: want at least 3 fewer", option, derived)
	}
}
