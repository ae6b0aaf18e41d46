package tri_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// countingListener counts the connections it hands out.
type countingListener struct {
	net.Listener
	accepted *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// TestWrapListeners: the servers of an app serve through the wrapped
// listener; a wrap that fails makes Listen fail, naming the address, and
// frees the port.
func TestWrapListeners(t *testing.T) {
	var accepted atomic.Int64
	var wrappedAt string
	s := tri.NewServers([]tri.Export{{Desc: &echoDesc, Impl: &echo{name: "p1"}, Version: "1.0.0"}}, triple.WithLogger(quiet)).
		WrapListeners(func(l net.Listener) (net.Listener, error) {
			wrappedAt = l.Addr().String()
			return countingListener{l, &accepted}, nil
		})
	srv, err := s.Factory()(config.Protocol{Name: "tri", Host: "127.0.0.1", Port: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr, err := srv.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Shutdown(ctx) }()
	if wrappedAt != addr.String() {
		t.Fatalf("wrapped the listener on %q, bound %s", wrappedAt, addr)
	}
	cc, err := triple.Dial(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	out := new(wrapperspb.StringValue)
	if err := cc.Invoke(ctx, "/test.Echo/Echo", wrapperspb.String("hi"), out, triple.WithVersion("1.0.0")); err != nil {
		t.Fatal(err)
	}
	if accepted.Load() != 1 {
		t.Fatalf("%d connections through the wrapped listener, want 1", accepted.Load())
	}

	var freed string
	bad := tri.NewServer(triple.NewServer(triple.WithLogger(quiet)), "127.0.0.1", 0)
	bad.WrapListener(func(l net.Listener) (net.Listener, error) {
		freed = l.Addr().String()
		return nil, errors.New("no policy for this address")
	})
	if _, err := bad.Listen(ctx); err == nil || !strings.Contains(err.Error(), "no policy for this address") || !strings.Contains(err.Error(), freed) {
		t.Fatalf("Listen with a failing wrap: %v, want the wrap's error naming %s", err, freed)
	}
	l, err := net.Listen("tcp", freed)
	if err != nil {
		t.Fatalf("the port of the failed Listen is still taken: %v", err)
	}
	_ = l.Close()
}
