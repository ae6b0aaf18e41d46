package xdsclient_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

func testConfig(addr string) *bootstrap.Config {
	return &bootstrap.Config{
		ServerURI: addr,
		Node: bootstrap.Identity{
			PodName:   "consumer-0",
			Namespace: "default",
			IPs:       []string{"10.0.0.7"},
			Labels:    map[string]string{"app": "consumer"},
		}.Node(),
	}
}

func newClient(t *testing.T, srv *xdstest.Server) *xdsclient.Client {
	t.Helper()
	c, err := xdsclient.New(testConfig(srv.Address()),
		xdsclient.WithBackoff(10*time.Millisecond, 100*time.Millisecond),
		xdsclient.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

type eventKind int

const (
	changed eventKind = iota
	failed
	notFound
)

type event[T xdsresource.Resource] struct {
	kind     eventKind
	resource T
	err      error
}

// recorder is a Watcher that queues its calls for the test to take.
type recorder[T xdsresource.Resource] struct {
	events chan event[T]
}

func newRecorder[T xdsresource.Resource]() *recorder[T] {
	return &recorder[T]{events: make(chan event[T], 100)}
}

func (r *recorder[T]) ResourceChanged(res T)   { r.events <- event[T]{kind: changed, resource: res} }
func (r *recorder[T]) ResourceError(err error) { r.events <- event[T]{kind: failed, err: err} }
func (r *recorder[T]) ResourceDoesNotExist()   { r.events <- event[T]{kind: notFound} }

// next returns the next event, failing the test after waitTimeout.
func (r *recorder[T]) next(t *testing.T) event[T] {
	t.Helper()
	select {
	case e := <-r.events:
		return e
	case <-time.After(waitTimeout):
		t.Fatalf("no watcher event within %v", waitTimeout)
		return event[T]{}
	}
}

// nextOf skips events until one of kind k arrives.
func (r *recorder[T]) nextOf(t *testing.T, k eventKind) event[T] {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case e := <-r.events:
			if e.kind == k {
				return e
			}
		case <-deadline:
			t.Fatalf("no watcher event of kind %d within %v", k, waitTimeout)
			return event[T]{}
		}
	}
}

// none fails if an event arrives within d.
func (r *recorder[T]) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case e := <-r.events:
		t.Fatalf("unexpected watcher event %+v", e)
	case <-time.After(d):
	}
}

func waitRequest(t *testing.T, srv *xdstest.Server, from int, match func(xdstest.Request) bool) xdstest.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	r, err := srv.WaitForNewRequest(ctx, from, match)
	if err != nil {
		t.Fatalf("%v; requests: %+v", err, srv.Requests())
	}
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func typeStatus(c *xdsclient.Client, t xdsresource.Type) xdsclient.TypeStatus {
	for _, ts := range c.Status().Types {
		if ts.Type == t {
			return ts
		}
	}
	return xdsclient.TypeStatus{}
}

func isType(t xdsresource.Type) func(xdstest.Request) bool {
	return func(r xdstest.Request) bool { return r.TypeURL == t.URL() }
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
