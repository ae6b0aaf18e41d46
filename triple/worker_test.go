package triple

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// goid is the id of the calling goroutine, read from its stack header.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// workerServer serves /perf.Worker/Goid, which answers with the id of the
// goroutine that ran it; gate, when set, holds every call until closed.
func workerServer(t *testing.T, gate <-chan struct{}, started func()) (*Server, *ClientConn) {
	t.Helper()
	s := NewServer(WithoutReflection())
	desc := &ServiceDesc{
		ServiceName: "perf.Worker",
		HandlerType: (*any)(nil),
		Methods: []MethodDesc{{MethodName: "Goid", Handler: func(_ any, _ context.Context, dec func(any) error, _ UnaryServerInterceptor) (any, error) {
			if err := dec(new(emptypb.Empty)); err != nil {
				return nil, err
			}
			if started != nil {
				started()
			}
			if gate != nil {
				<-gate
			}
			return wrapperspb.UInt64(goid()), nil
		}}},
	}
	if err := s.Register(desc, struct{}{}); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	cc, err := Dial("tri://" + lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, cc
}

// onlyConn is s's only connection, nil while there is none.
func onlyConn(s *Server) *h2ServerConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sc := range s.conns {
		return sc
	}
	return nil
}

// idleWorkers is the number of idle handler goroutines of s's only
// connection, -1 while there is none.
func idleWorkers(s *Server) int {
	if sc := onlyConn(s); sc != nil {
		return int(sc.idleWorkers.Load())
	}
	return -1
}

// waitFor waits until cond holds, failing after 10s with what it says.
func waitFor(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what())
		}
		time.Sleep(time.Millisecond)
	}
}

// waitIdle waits until s's connection has want idle handler goroutines.
func waitIdle(t *testing.T, s *Server, want int) {
	t.Helper()
	waitFor(t, func() bool { return idleWorkers(s) == want },
		func() string { return fmt.Sprintf("%d idle handler goroutines, want %d", idleWorkers(s), want) })
}

func callGoid(t *testing.T, cc *ClientConn) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply := new(wrapperspb.UInt64Value)
	if err := cc.Invoke(ctx, "/perf.Worker/Goid", new(emptypb.Empty), reply); err != nil {
		t.Fatal(err)
	}
	return reply.GetValue()
}

// TestHandlerGoroutineReused checks that one handler goroutine serves a
// connection's calls one after another, instead of a new one per call.
func TestHandlerGoroutineReused(t *testing.T) {
	s, cc := workerServer(t, nil, nil)
	first := callGoid(t, cc)
	for i := range 10 {
		waitIdle(t, s, 1) // the last call's goroutine waits for the next
		if got := callGoid(t, cc); got != first {
			t.Fatalf("call %d ran on goroutine %d, the first on %d: handler goroutines are not reused", i+2, got, first)
		}
	}
}

// TestIdleWorkersBounded checks that after a burst of concurrent calls at
// most maxIdleWorkers handler goroutines stay, and that they end with the
// connection.
func TestIdleWorkersBounded(t *testing.T) {
	const calls = 4 * maxIdleWorkers
	gate := make(chan struct{})
	var inHandler sync.WaitGroup
	inHandler.Add(calls)
	s, cc := workerServer(t, gate, inHandler.Done)
	ids := make(chan uint64, calls)
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			reply := new(wrapperspb.UInt64Value)
			if err := cc.Invoke(ctx, "/perf.Worker/Goid", new(emptypb.Empty), reply); err != nil {
				t.Error(err)
			}
			ids <- reply.GetValue()
		})
	}
	inHandler.Wait() // every call holds a goroutine of its own
	close(gate)
	wg.Wait()
	close(ids)
	seen := map[uint64]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != calls {
		t.Fatalf("%d concurrent calls ran on %d goroutines, want one each", calls, len(seen))
	}
	waitIdle(t, s, maxIdleWorkers)
	sc := onlyConn(s)
	if err := cc.Close(); err != nil {
		t.Fatal(err)
	}
	// The connection ends: its idle goroutines exit (goleak checks they are gone).
	waitFor(t, func() bool { return sc.idleWorkers.Load() == 0 },
		func() string {
			return fmt.Sprintf("%d idle handler goroutines after the connection closed", sc.idleWorkers.Load())
		})
}
