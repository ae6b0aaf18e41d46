package tri_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/file"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// clockEcho answers with the time its context had left; "slow" waits for
// the context to end and reports how it ended.
type clockEcho struct{ ended chan error }

func (c *clockEcho) Echo(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	if req.GetValue() == "slow" {
		<-ctx.Done()
		c.ended <- ctx.Err()
		return nil, ctx.Err()
	}
	dl, ok := ctx.Deadline()
	if !ok {
		return wrapperspb.String("none"), nil
	}
	return wrapperspb.String(time.Until(dl).String()), nil
}

// TestReferenceTimeoutOverTriple: the reference's timeout, passed to
// triple as a per-call deadline rather than a derived context, reaches the
// provider as grpc-timeout and ends a slow call with DEADLINE_EXCEEDED.
func TestReferenceTimeoutOverTriple(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reg, err := file.New(filepath.Join(t.TempDir(), "registry.yaml"), file.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	impl := &clockEcho{ended: make(chan error, 1)}
	srv := triple.NewServer(triple.WithLogger(quiet), triple.WithoutReflection())
	if err := srv.Register(&echoDesc, impl); err != nil {
		t.Fatal(err)
	}
	s := tri.NewServer(srv, "127.0.0.1", 0)
	addr, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Shutdown(ctx) }()
	if err := reg.Register(ctx, registry.Instance{Key: registry.Key{Interface: "test.Echo"}, Address: addr.String()}); err != nil {
		t.Fatal(err)
	}
	left := func(ref *consumer.Reference, callCtx context.Context) time.Duration {
		t.Helper()
		out := new(wrapperspb.StringValue)
		if err := tri.NewClient(ref).Invoke(callCtx, "/test.Echo/Echo", wrapperspb.String("clock"), out); err != nil {
			t.Fatal(err)
		}
		d, err := time.ParseDuration(out.GetValue())
		if err != nil {
			t.Fatalf("the provider saw no deadline (%q)", out.GetValue())
		}
		return d
	}

	def, err := consumer.New(registry.Key{Interface: "test.Echo"}, reg, tri.NewTransport())
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	if d := left(def, ctx); d <= consumer.DefaultTimeout-time.Second || d > consumer.DefaultTimeout {
		t.Errorf("default timeout: the provider had %s left, want just under %s", d, consumer.DefaultTimeout)
	}
	// A caller's earlier deadline is the one sent.
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	if d := left(def, short); d > 500*time.Millisecond {
		t.Errorf("500ms context: the provider had %s left", d)
	}

	ref, err := consumer.New(registry.Key{Interface: "test.Echo"}, reg, tri.NewTransport(), consumer.WithTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	start := time.Now()
	err = tri.NewClient(ref).Invoke(ctx, "/test.Echo/Echo", wrapperspb.String("slow"), new(wrapperspb.StringValue))
	if call.CodeOf(err) != call.DeadlineExceeded || triple.CodeOf(err) != triple.CodeDeadlineExceeded {
		t.Fatalf("slow call: %v, want DEADLINE_EXCEEDED", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 5*time.Second {
		t.Errorf("slow call ended after %s, want at the 100ms timeout", d)
	}
	select {
	case err := <-impl.ended:
		if err == nil {
			t.Error("the provider's context ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the provider's call never ended")
	}
}
