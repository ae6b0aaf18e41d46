package triple_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// stuckEcho holds unary calls, like blockEcho holds bidi ones, until their
// context ends.
type stuckEcho struct{ blockEcho }

func (b *stuckEcho) Echo(ctx context.Context, _ *testpb.EchoRequest) (*testpb.EchoResponse, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	b.ended <- ctx.Err()
	return nil, triple.Errorf(triple.CodeOf(ctx.Err()), "gave up: %v", ctx.Err())
}

// recv waits for a value that must come, failing after 5 s.
func recv[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing after 5s", what)
		var zero T
		return zero
	}
}

// shutdownSlack bounds how long after its context ends Shutdown may take
// to close the remaining connections and return.
const shutdownSlack = 2 * time.Second

func TestShutdownDeadlineForceClosesCalls(t *testing.T) {
	before := goleak.IgnoreCurrent()
	be := &stuckEcho{blockEcho{started: make(chan struct{}, 2), ended: make(chan error, 2)}}
	s := triple.NewServer()
	if err := testpbtriple.RegisterEchoServiceHandler(s, be); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	cc, err := triple.Dial("tri://" + lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := testpbtriple.NewEchoServiceClient(cc)

	// One unary call and one bidi stream in flight, their handlers blocked
	// until their contexts end.
	unary := make(chan error, 1)
	go func() {
		_, err := client.Echo(context.Background(), &testpb.EchoRequest{Text: "stuck"})
		unary <- err
	}()
	st, err := client.EchoBidi(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testpb.EchoRequest{Text: "stuck"}); err != nil {
		t.Fatal(err)
	}
	recv(t, "first handler start", be.started)
	recv(t, "second handler start", be.started)

	const grace = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	select {
	case err = <-shut:
	case <-time.After(grace + shutdownSlack):
		t.Fatalf("Shutdown still waits %v after its context ended", time.Since(start)-grace)
	}
	took := time.Since(start)
	t.Logf("Shutdown returned after %v (grace %v): %v", took, grace, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with calls still in flight: %v, want context.DeadlineExceeded", err)
	}
	if took < grace {
		t.Fatalf("Shutdown returned after %v, before its context ended (%v)", took, grace)
	}
	if err := recv(t, "Serve", served); err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}

	// The calls were broken, not answered: UNAVAILABLE on the client, a
	// canceled context in the handlers.
	if err := recv(t, "unary call", unary); triple.CodeOf(err) != triple.CodeUnavailable {
		t.Errorf("unary call cut by Shutdown: %v, want UNAVAILABLE", err)
	} else {
		t.Logf("unary call: %v", err)
	}
	if _, err := st.Recv(); triple.CodeOf(err) != triple.CodeUnavailable {
		t.Errorf("bidi stream cut by Shutdown: %v, want UNAVAILABLE", err)
	} else {
		t.Logf("bidi stream: %v", err)
	}
	for range 2 {
		if err := recv(t, "handler end", be.ended); !errors.Is(err, context.Canceled) {
			t.Errorf("handler context: %v, want context.Canceled", err)
		}
	}
	_ = cc.Close()
	goleak.VerifyNone(t, before)
}
