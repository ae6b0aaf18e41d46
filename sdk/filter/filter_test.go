package filter_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
)

type trace struct{ events []string }

func (tr *trace) client(name string, order int) filter.Client {
	return filter.Client{
		Name: name, Order: order,
		Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
			tr.events = append(tr.events, ">"+name)
			err := next(ctx, info, req, resp)
			tr.events = append(tr.events, "<"+name)
			return err
		},
		Stream: func(ctx context.Context, info *call.Info, next filter.StreamInvoker) (filter.ClientStream, error) {
			tr.events = append(tr.events, "s"+name)
			return next(ctx, info)
		},
	}
}

func (tr *trace) server(name string, order int) filter.Server {
	return filter.Server{
		Name: name, Order: order,
		Unary: func(ctx context.Context, info *call.Info, req any, next filter.UnaryHandler) (any, error) {
			tr.events = append(tr.events, ">"+name)
			resp, err := next(ctx, info, req)
			tr.events = append(tr.events, "<"+name)
			return resp, err
		},
		Stream: func(ctx context.Context, info *call.Info, ss filter.ServerStream, next filter.StreamHandler) error {
			tr.events = append(tr.events, "s"+name)
			return next(ctx, info, ss)
		},
	}
}

func TestClientChainRunsByOrder(t *testing.T) {
	tr := &trace{}
	// Given out of order, with one filter that only wraps streams.
	c, err := filter.NewClientChain(tr.client("metrics", 30), tr.client("auth", 10), filter.Client{Name: "streams-only", Order: 15}, tr.client("tracing", 20))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Names(), ","); got != "auth,streams-only,tracing,metrics" {
		t.Errorf("Names = %s", got)
	}
	invoke := c.Unary(func(context.Context, *call.Info, any, any) error {
		tr.events = append(tr.events, "call")
		return nil
	})
	if err := invoke(context.Background(), &call.Info{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tr.events, " "), ">auth >tracing >metrics call <metrics <tracing <auth"; got != want {
		t.Errorf("unary order:\n got %s\nwant %s", got, want)
	}
	tr.events = nil
	open := c.Stream(func(context.Context, *call.Info) (filter.ClientStream, error) {
		tr.events = append(tr.events, "open")
		return nil, nil
	})
	if _, err := open(context.Background(), &call.Info{}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tr.events, " "), "sauth stracing smetrics open"; got != want {
		t.Errorf("stream order: got %s, want %s", got, want)
	}
}

func TestServerChainRunsByOrder(t *testing.T) {
	tr := &trace{}
	c, err := filter.NewServerChain(tr.server("b", 2), tr.server("a", -5), tr.server("c", 7))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Unary(func(context.Context, *call.Info, any) (any, error) {
		tr.events = append(tr.events, "handle")
		return "ok", nil
	})
	resp, err := h(context.Background(), &call.Info{}, nil)
	if err != nil || resp != "ok" {
		t.Fatalf("handler = %v, %v", resp, err)
	}
	if got, want := strings.Join(tr.events, " "), ">a >b >c handle <c <b <a"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	tr.events = nil
	sh := c.Stream(func(context.Context, *call.Info, filter.ServerStream) error {
		tr.events = append(tr.events, "serve")
		return nil
	})
	if err := sh(context.Background(), &call.Info{}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tr.events, " "), "sa sb sc serve"; got != want {
		t.Errorf("stream: got %s, want %s", got, want)
	}
}

func TestFilterCanShortCircuitAndEditAttachments(t *testing.T) {
	auth := filter.Server{Name: "auth", Order: 1, Unary: func(ctx context.Context, info *call.Info, req any, next filter.UnaryHandler) (any, error) {
		if v, _ := info.Attachments.Get("authorization"); v != "Bearer good" {
			return nil, call.Errorf(call.Unauthenticated, "missing or bad token")
		}
		return next(ctx, info, req)
	}}
	stamp := filter.Client{Name: "stamp", Order: 1, Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
		info.Attachments = info.Attachments.Set("Authorization", "Bearer good")
		return next(ctx, info, req, resp)
	}}
	sc, _ := filter.NewServerChain(auth)
	handled := 0
	h := sc.Unary(func(context.Context, *call.Info, any) (any, error) { handled++; return nil, nil })
	cc, _ := filter.NewClientChain(stamp)
	// Client with the stamping filter: the server chain lets it through.
	invoke := cc.Unary(func(ctx context.Context, info *call.Info, req, _ any) error {
		_, err := h(ctx, info, req)
		return err
	})
	if err := invoke(context.Background(), &call.Info{}, nil, nil); err != nil || handled != 1 {
		t.Fatalf("stamped call: %v, handled %d", err, handled)
	}
	// Without it, auth stops the call before the handler.
	if _, err := h(context.Background(), &call.Info{}, nil); call.CodeOf(err) != call.Unauthenticated || handled != 1 {
		t.Fatalf("unstamped call: %v, handled %d", err, handled)
	}
}

func TestChainErrors(t *testing.T) {
	tests := []struct {
		name    string
		filters []filter.Client
		want    string
	}{
		{"same order", []filter.Client{{Name: "a", Order: 1}, {Name: "b", Order: 1}}, `"a" and "b" both have order 1`},
		{"same name", []filter.Client{{Name: "a", Order: 1}, {Name: "a", Order: 2}}, `"a" appears twice`},
		{"no name", []filter.Client{{Order: 3}}, "order 3 has no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := filter.NewClientChain(tt.filters...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := filter.NewServerChain(filter.Server{Name: "x", Order: 0}, filter.Server{Name: "y"}); err == nil {
		t.Error("server chain accepted two filters with order 0")
	}
}

func TestRegistryChainsFollowListOrder(t *testing.T) {
	tr := &trace{}
	r := filter.NewRegistry()
	for _, f := range []filter.Client{tr.client("auth", 99), tr.client("metrics", 1)} {
		if err := r.RegisterClient(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.RegisterServer(tr.server("auth", 0)); err != nil {
		t.Fatal(err)
	}
	c, err := r.ClientChain("auth", "metrics") // the list wins over Order
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Unary(func(context.Context, *call.Info, any, any) error { return nil })(context.Background(), &call.Info{}, nil, nil)
	if got := strings.Join(tr.events, " "); got != ">auth >metrics <metrics <auth" {
		t.Errorf("got %s", got)
	}
	if _, err := r.ClientChain("auth", "ratelimit"); err == nil || !strings.Contains(err.Error(), `client[1]: client filter "ratelimit" is not registered; registered: auth, metrics`) {
		t.Errorf("unknown filter error = %v", err)
	}
	if !r.HasClient("metrics") || r.HasServer("metrics") || !r.HasServer("auth") {
		t.Error("HasClient/HasServer disagree with what was registered")
	}
	if _, err := r.ServerChain("auth"); err != nil {
		t.Error(err)
	}
	if _, err := r.ServerChain("metrics"); err == nil {
		t.Error("client-only filter found on the server side")
	}
	if err := r.RegisterClient(filter.Client{}); err == nil {
		t.Error("a filter without a name registered")
	}
}

func noop(name string, order int) filter.Client {
	return filter.Client{Name: name, Order: order, Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
		return next(ctx, info, req, resp)
	}}
}

func TestPassThroughChainDoesNotAllocate(t *testing.T) {
	c, _ := filter.NewClientChain(noop("a", 1), noop("b", 2), noop("c", 3))
	invoke := c.Unary(func(context.Context, *call.Info, any, any) error { return nil })
	info := &call.Info{}
	ctx := context.Background()
	if a := testing.AllocsPerRun(1000, func() { _ = invoke(ctx, info, nil, nil) }); a != 0 {
		t.Errorf("%v allocations per call through 3 no-op filters, want 0", a)
	}
}

func BenchmarkClientChain3NoOp(b *testing.B) {
	c, _ := filter.NewClientChain(noop("a", 1), noop("b", 2), noop("c", 3))
	invoke := c.Unary(func(context.Context, *call.Info, any, any) error { return nil })
	info := &call.Info{}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = invoke(ctx, info, nil, nil)
	}
}

func TestServerChainPrepend(t *testing.T) {
	tr := &trace{}
	c, err := filter.NewServerChain(tr.server("b", -10), tr.server("c", 7))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Prepend(tr.server("guard", 100))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(p.Names(), " "), "guard b c"; got != want {
		t.Errorf("names %s, want %s", got, want)
	}
	if got := strings.Join(c.Names(), " "); got != "b c" {
		t.Errorf("the original chain changed: %s", got)
	}
	if _, err := p.Unary(func(context.Context, *call.Info, any) (any, error) { return nil, nil })(context.Background(), &call.Info{}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tr.events, " "), ">guard >b >c <c <b <guard"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	var empty *filter.ServerChain
	if p, err := empty.Prepend(tr.server("guard", 0)); err != nil || strings.Join(p.Names(), " ") != "guard" {
		t.Errorf("prepend to a nil chain: %v, %v", p, err)
	}
	if _, err := c.Prepend(tr.server("b", 0)); err == nil || !strings.Contains(err.Error(), `"b" appears twice`) {
		t.Errorf("a repeated name: %v", err)
	}
}
