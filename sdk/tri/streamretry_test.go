package tri_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// TestStreamRetriedOverTriple runs bidi streams over real Triple on
// loopback against two providers, one of which fails every stream: with a
// status alone (before any answer) the reference moves the stream to the
// good provider and replays what was sent, so every stream succeeds; after
// it answered once, the failure is the caller's and nothing is replayed.
func TestStreamRetriedOverTriple(t *testing.T) {
	for _, tt := range []struct {
		fail     string
		wantFail bool
	}{
		{"at once", false},
		{"after one", true},
	} {
		t.Run(tt.fail, func(t *testing.T) {
			reg := filepath.Join(t.TempDir(), "registry.yaml")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			bad := &echo{name: "bad", chatFail: tt.fail}
			for _, impl := range []*echo{bad, {name: "good"}} {
				p := providerApp(t, reg, impl)
				if err := p.Start(ctx); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = p.Stop(ctx) }()
			}
			c := consumerApp(t, reg)
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Stop(ctx) }()
			ref, _ := c.Reference("echo")
			if err := ref.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			client := tri.NewClient(ref)
			failed := 0
			for range 10 {
				if err := chatTwice(ctx, client); err != nil {
					if triple.CodeOf(err) != triple.CodeUnavailable {
						t.Fatalf("stream failed with %v, want UNAVAILABLE", err)
					}
					failed++
				}
			}
			if bad.chats.Load() == 0 {
				t.Fatal("no stream reached the failing provider; the test shows nothing")
			}
			if tt.wantFail && int64(failed) != bad.chats.Load() {
				t.Errorf("%d streams failed, the failing provider took %d: a stream it had answered was retried", failed, bad.chats.Load())
			}
			if !tt.wantFail && failed > 0 {
				t.Errorf("%d of 10 streams failed; a stream refused before any answer must move to the good provider", failed)
			}
		})
	}
}

// chatTwice sends two messages, reading each answer, then closes.
func chatTwice(ctx context.Context, client *tri.Client) error {
	st, err := client.NewStream(ctx, &echoDesc.Streams[0], "/test.Echo/Chat")
	if err != nil {
		return err
	}
	chat := &triple.GenericClientStream[wrapperspb.StringValue, wrapperspb.StringValue]{ClientStream: st}
	for _, m := range []string{"a", "b"} {
		if err := chat.Send(wrapperspb.String(m)); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		got, err := chat.Recv()
		if err != nil {
			return err
		}
		if got.GetValue() != m+" from good" && got.GetValue() != m+" from bad" {
			return errors.New("unexpected answer " + got.GetValue())
		}
	}
	if err := chat.CloseSend(); err != nil {
		return err
	}
	if _, err := chat.Recv(); !errors.Is(err, io.EOF) {
		return err
	}
	if _, err := st.Header(); err != nil {
		return err
	}
	return nil
}
