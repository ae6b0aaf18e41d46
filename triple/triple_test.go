package triple_test

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo is the test implementation of EchoService.
type echo struct{ name string }

func seen(ctx context.Context) map[string]string {
	out := map[string]string{}
	if md, ok := triple.FromIncomingContext(ctx); ok {
		for k, v := range md {
			if strings.HasSuffix(k, "-bin") {
				out[k] = hex.EncodeToString([]byte(strings.Join(v, "")))
				continue
			}
			out[k] = strings.Join(v, ",")
		}
	}
	if ci, ok := triple.CallInfoFromContext(ctx); ok {
		out["@group"], out["@version"], out["@server"] = ci.Group, ci.Version, "" // who handled it
		out["@app"] = ci.Application
	}
	return out
}

func (e *echo) reply(ctx context.Context, req *testpb.EchoRequest) (*testpb.EchoResponse, error) {
	if req.GetSleepMs() > 0 {
		select {
		case <-time.After(time.Duration(req.GetSleepMs()) * time.Millisecond):
		case <-ctx.Done():
			return nil, triple.Errorf(triple.CodeOf(ctx.Err()), "gave up: %v", ctx.Err())
		}
	}
	if c := req.GetFailCode(); c != 0 {
		return nil, triple.Errorf(triple.Code(c), "failed as asked: %s", req.GetText())
	}
	md := seen(ctx)
	md["@server"] = e.name
	return &testpb.EchoResponse{Text: req.GetText(), Payload: req.GetPayload(), Metadata: md}, nil
}

func (e *echo) Echo(ctx context.Context, req *testpb.EchoRequest) (*testpb.EchoResponse, error) {
	return e.reply(ctx, req)
}

func (e *echo) EchoServer(req *testpb.EchoRequest, s triple.ServerStreamServer[testpb.EchoResponse]) error {
	for range max(req.GetCount(), 1) {
		resp, err := e.reply(s.Context(), req)
		if err != nil {
			return err
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func (e *echo) EchoClient(s triple.ClientStreamServer[testpb.EchoRequest, testpb.EchoResponse]) error {
	var texts []string
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		texts = append(texts, req.GetText())
	}
	return s.SendAndClose(&testpb.EchoResponse{Text: strings.Join(texts, ","), Metadata: seen(s.Context())})
}

func (e *echo) EchoBidi(s triple.BidiStreamServer[testpb.EchoRequest, testpb.EchoResponse]) error {
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := e.reply(s.Context(), req)
		if err != nil {
			return err
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

// startServer serves echo on a loopback port and returns its address.
func startServer(t testing.TB, opts []triple.ServerOption, register func(*triple.Server)) string {
	t.Helper()
	s := triple.NewServer(opts...)
	if register == nil {
		register = func(s *triple.Server) {
			if err := testpbtriple.RegisterEchoServiceHandler(s, &echo{name: "default"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	register(s)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return lis.Addr().String()
}

func dial(t testing.TB, addr string, opts ...triple.ClientOption) *triple.ClientConn {
	t.Helper()
	cc, err := triple.Dial("tri://"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUnary(t *testing.T) {
	addr := startServer(t, nil, nil)
	client := testpbtriple.NewEchoServiceClient(dial(t, addr))
	resp, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "hello", Payload: []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetText() != "hello" || string(resp.GetPayload()) != "\x01\x02\x03" {
		t.Fatalf("resp = %v", resp)
	}
}

func TestServerStream(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	st, err := client.EchoServer(ctxT(t), &testpb.EchoRequest{Text: "s", Count: 5})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		resp, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetText() != "s" {
			t.Fatalf("resp %d = %v", n, resp)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("got %d responses, want 5", n)
	}
}

func TestClientStream(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	st, err := client.EchoClient(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b", "c"} {
		if err := st.Send(&testpb.EchoRequest{Text: s}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := st.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetText() != "a,b,c" {
		t.Fatalf("text = %q, want a,b,c", resp.GetText())
	}
}

func TestBidiStream(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	st, err := client.EchoBidi(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"x", "y", "z"} {
		if err := st.Send(&testpb.EchoRequest{Text: s}); err != nil {
			t.Fatal(err)
		}
		resp, err := st.Recv() // ping-pong: each answer before the next request
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetText() != s {
			t.Fatalf("got %q, want %q", resp.GetText(), s)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after CloseSend: %v, want io.EOF", err)
	}
}
