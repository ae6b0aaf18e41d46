package cluster_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/cluster"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// fakeProviders is an in-process fake of stream providers, by address:
// each opened attempt records what it received and answers as its
// behaviour says.
type fakeProviders struct {
	mu       sync.Mutex
	behave   map[string]behaviour
	attempts []*fakeAttempt
}

type behaviour struct {
	openErr error // fail at open
	// failFirst fails the first RecvMsg with this status; with headers
	// set the provider had sent response headers first (committed).
	failFirst error
	headers   bool
	// answerThenFail answers one message, then fails with this status.
	answerThenFail error
}

func (f *fakeProviders) open(ctx context.Context, ep *mesh.Endpoint, _ *call.Info) (filter.ClientStream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.behave[ep.Address]
	if b.openErr != nil {
		return nil, b.openErr
	}
	a := &fakeAttempt{ctx: ctx, addr: ep.Address, b: b}
	f.attempts = append(f.attempts, a)
	return a, nil
}

func (f *fakeProviders) tried() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.attempts {
		out = append(out, a.addr)
	}
	return out
}

// fakeAttempt echoes each message it receives with its address, once the
// caller closed its side.
type fakeAttempt struct {
	ctx  context.Context
	addr string
	b    behaviour

	mu     sync.Mutex
	got    []string
	closed bool
	recvd  int
}

func (a *fakeAttempt) Context() context.Context { return a.ctx }

func (a *fakeAttempt) SendMsg(m any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, string(m.([]byte)))
	return nil
}

func (a *fakeAttempt) CloseSend() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	return nil
}

func (a *fakeAttempt) RecvMsg(m any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recvd++
	switch {
	case a.b.failFirst != nil:
		return a.b.failFirst
	case a.b.answerThenFail != nil && a.recvd > 1:
		return a.b.answerThenFail
	case a.recvd > len(a.got):
		return io.EOF
	}
	*m.(*[]byte) = []byte(a.got[a.recvd-1] + " from " + a.addr)
	return nil
}

func (a *fakeAttempt) ResponseStarted() bool { return a.b.headers }

// observer is a Target that records how every attempt ended.
type observer struct {
	*balancer.Handle
	mu    sync.Mutex
	ended []string
}

func (o *observer) TryDone(ep *mesh.Endpoint, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = append(o.ended, ep.Address+" "+call.CodeOf(err).String())
}

var streamInfo = &call.Info{Service: "greet.GreetService", Method: "Chat", Streaming: true}

var unavailable = call.Errorf(call.Unavailable, "provider not ready")

// firstPick returns a handle whose next pick is addr.
func firstPick(t *testing.T, n int, addr string) *balancer.Handle {
	t.Helper()
	h := handle(t, n)
	for range n {
		r, _ := h.Pick(balancer.PickInfo{})
		if r.Endpoint.Address == addr {
			// The pick after this one comes next in the rotation; turn
			// the rotation until it is addr's turn again.
			for range n - 1 {
				_, _ = h.Pick(balancer.PickInfo{})
			}
			return h
		}
	}
	t.Fatalf("%s is not an endpoint", addr)
	return nil
}

// chat sends msgs, closes, and reads every answer.
func chat(st filter.ClientStream, msgs ...string) ([]string, error) {
	for _, m := range msgs {
		if err := st.SendMsg([]byte(m)); err != nil {
			return nil, err
		}
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	var out []string
	for {
		var b []byte
		err := st.RecvMsg(&b)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(b))
	}
}

// TestStreamRetriedBeforeTheProviderAnswers: the first provider fails a
// stream with a status alone (no headers, no message); the stream moves to
// another endpoint and the messages sent so far, and the CloseSend, reach
// it in order.
func TestStreamRetriedBeforeTheProviderAnswers(t *testing.T) {
	f := &fakeProviders{behave: map[string]behaviour{"10.0.0.1:1": {failFirst: unavailable}}}
	o := &observer{Handle: firstPick(t, 3, "10.0.0.1:1")}
	var ended []error
	st, err := cluster.Failover(cluster.WithBackoff(mesh.Backoff{Base: time.Microsecond})).
		NewStream(context.Background(), streamInfo, o, f.open, func(err error) { ended = append(ended, err) })
	if err != nil {
		t.Fatal(err)
	}
	out, err := chat(st, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	tried := f.tried()
	if len(tried) != 2 || tried[0] != "10.0.0.1:1" || tried[1] == tried[0] {
		t.Fatalf("attempts on %v, want 10.0.0.1:1 then another endpoint", tried)
	}
	if want := []string{"a from " + tried[1], "b from " + tried[1]}; !slices.Equal(out, want) {
		t.Errorf("answers %v, want %v", out, want)
	}
	if a := f.attempts[1]; !slices.Equal(a.got, []string{"a", "b"}) || !a.closed {
		t.Errorf("the retry received %v (closed %v), want a, b and the close", a.got, a.closed)
	}
	if want := []string{"10.0.0.1:1 unavailable", tried[1] + " ok"}; !slices.Equal(o.ended, want) {
		t.Errorf("attempts ended %v, want %v", o.ended, want)
	}
	if len(ended) != 1 || ended[0] != nil {
		t.Errorf("end called with %v, want once with nil", ended)
	}
}

// TestStreamNotRetriedOnceCommitted: a provider that sent response
// headers, or a message, has answered; its failure is the stream's.
func TestStreamNotRetriedOnceCommitted(t *testing.T) {
	for name, b := range map[string]behaviour{
		"headers then status": {failFirst: unavailable, headers: true},
		"message then status": {answerThenFail: unavailable, headers: true},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeProviders{behave: map[string]behaviour{"10.0.0.1:1": b}}
			o := &observer{Handle: firstPick(t, 3, "10.0.0.1:1")}
			st, err := cluster.Failover(cluster.WithBackoff(mesh.Backoff{Base: time.Microsecond})).NewStream(context.Background(), streamInfo, o, f.open, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = chat(st, "a", "b")
			if call.CodeOf(err) != call.Unavailable || len(f.tried()) != 1 {
				t.Errorf("%v after attempts on %v, want UNAVAILABLE after one", err, f.tried())
			}
			if want := []string{"10.0.0.1:1 unavailable"}; !slices.Equal(o.ended, want) {
				t.Errorf("attempts ended %v, want %v", o.ended, want)
			}
		})
	}
}

// TestStreamNotRetriedPastItsBuffer: once the messages sent exceed the
// replay buffer the stream commits to its attempt.
func TestStreamNotRetriedPastItsBuffer(t *testing.T) {
	f := &fakeProviders{behave: map[string]behaviour{"10.0.0.1:1": {failFirst: unavailable}}}
	o := &observer{Handle: firstPick(t, 3, "10.0.0.1:1")}
	s := cluster.Failover(cluster.WithBackoff(mesh.Backoff{Base: time.Microsecond}), cluster.WithStreamBuffer(10))
	st, err := s.NewStream(context.Background(), streamInfo, o, f.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = chat(st, "12345678", "12345678") // 16 bytes > 10
	if call.CodeOf(err) != call.Unavailable || len(f.tried()) != 1 {
		t.Errorf("%v after attempts on %v, want UNAVAILABLE after one", err, f.tried())
	}
	// Within the buffer the same stream is retried.
	f2 := &fakeProviders{behave: f.behave}
	st, err = s.NewStream(context.Background(), streamInfo, &observer{Handle: firstPick(t, 3, "10.0.0.1:1")}, f2.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chat(st, "12345", "12345"); err != nil || len(f2.tried()) != 2 {
		t.Errorf("%v after attempts on %v, want success on the second", err, f2.tried())
	}
}

// TestStreamCommitEndsRetries: a caller that asks for the response headers
// (tri's Header) commits the stream to its attempt.
func TestStreamCommitEndsRetries(t *testing.T) {
	f := &fakeProviders{behave: map[string]behaviour{"10.0.0.1:1": {failFirst: unavailable}}}
	st, err := cluster.Failover().NewStream(context.Background(), streamInfo, firstPick(t, 3, "10.0.0.1:1"), f.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := st.(filter.Committer).Commit(); a.(*fakeAttempt).addr != "10.0.0.1:1" {
		t.Fatalf("Commit returned the attempt on %s", a.(*fakeAttempt).addr)
	}
	if _, err := chat(st, "a"); call.CodeOf(err) != call.Unavailable || len(f.tried()) != 1 {
		t.Errorf("%v after attempts on %v, want UNAVAILABLE after one", err, f.tried())
	}
}

// TestStreamOpenFailures: connection failures at open are retried on other
// endpoints; other codes and Failfast are not; end hears the failure.
func TestStreamOpenFailures(t *testing.T) {
	refused := &call.Error{Code: call.Unavailable, Connect: true, Message: "connection refused"}
	f := &fakeProviders{behave: map[string]behaviour{"10.0.0.1:1": {openErr: refused}, "10.0.0.2:1": {openErr: refused}}}
	st, err := cluster.Failover(cluster.WithBackoff(mesh.Backoff{Base: time.Microsecond})).NewStream(context.Background(), streamInfo, firstPick(t, 3, "10.0.0.1:1"), f.open, nil)
	if err != nil {
		t.Fatalf("open with one endpoint left: %v", err)
	}
	if out, err := chat(st, "a"); err != nil || !slices.Equal(out, []string{"a from 10.0.0.3:1"}) {
		t.Errorf("answers %v, %v; want a from 10.0.0.3:1", out, err)
	}

	var ended []error
	_, err = cluster.Failfast().NewStream(context.Background(), streamInfo, firstPick(t, 3, "10.0.0.1:1"), f.open, func(err error) { ended = append(ended, err) })
	if !errors.Is(err, refused) || len(ended) != 1 || !errors.Is(ended[0], refused) {
		t.Errorf("failfast open: %v, end called with %v; want the refusal, once", err, ended)
	}
	bad := &fakeProviders{behave: map[string]behaviour{"10.0.0.1:1": {openErr: call.Errorf(call.PermissionDenied, "no")}}}
	_, err = cluster.Failover().NewStream(context.Background(), streamInfo, firstPick(t, 3, "10.0.0.1:1"), bad.open, nil)
	if call.CodeOf(err) != call.PermissionDenied || !strings.Contains(err.Error(), "no") {
		t.Errorf("open refused with PERMISSION_DENIED: %v", err)
	}
}

// TestStreamEndsWithItsContext: a stream abandoned by its caller ends
// (end is called) when its context does.
func TestStreamEndsWithItsContext(t *testing.T) {
	f := &fakeProviders{behave: map[string]behaviour{}}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	if _, err := cluster.Failfast().NewStream(ctx, streamInfo, handle(t, 1), f.open, func(err error) { ended <- err }); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ended with %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end with its context")
	}
}
