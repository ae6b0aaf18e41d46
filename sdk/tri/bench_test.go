package tri_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/file"
	"github.com/shoalmesh/shoal/sdk/tri"
)

func noop(name string, order int) filter.Client {
	return filter.Client{Name: name, Order: order, Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
		return next(ctx, info, req, resp)
	}}
}

// BenchmarkCall compares a bare triple client call with the same call
// through the sdk: file registry with 10 endpoints (10 loopback servers),
// round robin, failover, 3 no-op client filters. The sdk runs with its
// default 3s timeout and with the timeout off; the bare call without a
// deadline and with the same 3s one (grpc-timeout costs the provider, in
// this process, a deadline context of its own). Sub-benchmarks run in
// turn, so -count interleaves them:
//
//	GOMAXPROCS=1 go test -run '^$' -bench Call -count 6 ./tri
func BenchmarkCall(b *testing.B) {
	ctx := context.Background()
	reg, err := file.New(filepath.Join(b.TempDir(), "registry.yaml"), file.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	var addrs []string
	for range 10 {
		srv := triple.NewServer(triple.WithLogger(quiet), triple.WithoutReflection())
		if err := srv.Register(&echoDesc, &echo{name: "p"}); err != nil {
			b.Fatal(err)
		}
		s := tri.NewServer(srv, "127.0.0.1", 0)
		addr, err := s.Listen(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = s.Shutdown(ctx) }()
		addrs = append(addrs, addr.String())
		if err := reg.Register(ctx, registry.Instance{Key: registry.Key{Interface: "test.Echo"}, Address: addr.String()}); err != nil {
			b.Fatal(err)
		}
	}
	req := wrapperspb.String("hi")

	for _, timeout := range []time.Duration{0, consumer.DefaultTimeout} {
		b.Run("bare-triple/deadline="+name(timeout), func(b *testing.B) {
			cc, err := triple.Dial(addrs[0])
			if err != nil {
				b.Fatal(err)
			}
			defer cc.Close()
			dl := &triple.Deadline{}
			var opts []triple.CallOption
			if timeout > 0 {
				opts = []triple.CallOption{dl}
			}
			b.ReportAllocs()
			for b.Loop() {
				if timeout > 0 {
					dl.At = time.Now().Add(timeout)
				}
				out := new(wrapperspb.StringValue)
				if err := cc.Invoke(ctx, "/test.Echo/Echo", req, out, opts...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	chain, _ := filter.NewClientChain(noop("a", 1), noop("b", 2), noop("c", 3))
	for _, timeout := range []time.Duration{0, consumer.DefaultTimeout} {
		b.Run("sdk/timeout="+name(timeout), func(b *testing.B) {
			opts := []consumer.Option{consumer.WithFilters(chain), consumer.WithBalancer(balancer.RoundRobin())}
			if timeout == 0 {
				opts = append(opts, consumer.WithTimeout(0))
			} // else the default
			ref, err := consumer.New(registry.Key{Interface: "test.Echo"}, reg, tri.NewTransport(), opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer ref.Close()
			client := tri.NewClient(ref)
			if err := ref.WaitReady(ctx); err != nil {
				b.Fatal(err)
			}
			for range 20 { // warm every connection
				if err := client.Invoke(ctx, "/test.Echo/Echo", req, new(wrapperspb.StringValue)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				out := new(wrapperspb.StringValue)
				if err := client.Invoke(ctx, "/test.Echo/Echo", req, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func name(timeout time.Duration) string {
	if timeout == 0 {
		return "off"
	}
	return "default"
}
