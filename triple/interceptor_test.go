package triple_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// eventLog records what interceptors saw, in order.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *eventLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// markServerStream tags every request the handler receives and every
// response it sends with its interceptor's name.
type markServerStream struct {
	triple.ServerStream
	name string
}

func (s *markServerStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	req := m.(*testpb.EchoRequest)
	req.Text += "|" + s.name + "-recv"
	return nil
}

func (s *markServerStream) SendMsg(m any) error {
	resp := proto.Clone(m.(*testpb.EchoResponse)).(*testpb.EchoResponse)
	resp.Text += "|" + s.name + "-send"
	return s.ServerStream.SendMsg(resp)
}

// markClientStream does the same on the client and notes the response
// metadata it can see.
type markClientStream struct {
	triple.ClientStream
	name string
	log  *eventLog
	recv int
}

func (s *markClientStream) SendMsg(m any) error {
	req := proto.Clone(m.(*testpb.EchoRequest)).(*testpb.EchoRequest)
	req.Text += "|" + s.name + "-send"
	return s.ClientStream.SendMsg(req)
}

func (s *markClientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	switch {
	case errors.Is(err, io.EOF):
		tr := s.Trailer()
		s.log.add("%s end trailers a=%s b=%s", s.name, tr.Get("x-trailer-a"), tr.Get("x-trailer-b"))
	case err == nil:
		s.recv++
		if s.recv == 1 {
			h, herr := s.Header()
			s.log.add("%s headers a=%s b=%s err=%v", s.name, h.Get("x-header-a"), h.Get("x-header-b"), herr)
		}
		resp := m.(*testpb.EchoResponse)
		resp.Text += "|" + s.name + "-recv"
	}
	return err
}

// serveMounted serves s as the handler of a net/http server (h2c), the
// other path into a Server's streams.
func serveMounted(t *testing.T, s *triple.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s}
	hs.Protocols = new(http.Protocols)
	hs.Protocols.SetUnencryptedHTTP2(true)
	done := make(chan error, 1)
	go func() { done <- hs.Serve(lis) }()
	t.Cleanup(func() {
		_ = hs.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// TestStreamInterceptorsOnBidi: server interceptors a, b and client
// interceptors 1, 2 each run in the order given (the first outermost),
// see the stream's method and metadata, add metadata, and rewrite every
// message of a bidi stream on its way through.
func TestStreamInterceptorsOnBidi(t *testing.T) {
	for _, mounted := range []bool{false, true} {
		name := "Serve"
		if mounted {
			name = "mounted in net/http"
		}
		t.Run(name, func(t *testing.T) {
			var srvLog, cliLog eventLog
			serverIC := func(name string) triple.StreamServerInterceptor {
				return func(srv any, ss triple.ServerStream, info *triple.StreamServerInfo, h triple.StreamHandler) error {
					md, _ := triple.FromIncomingContext(ss.Context())
					srvLog.add("%s enter %s client=%v server=%v x-client-1=%s x-client-2=%s",
						name, info.FullMethod, info.IsClientStream, info.IsServerStream, md.Get("x-client-1"), md.Get("x-client-2"))
					if err := ss.SetHeader(triple.Pairs("x-header-"+name, name)); err != nil {
						return err
					}
					ss.SetTrailer(triple.Pairs("x-trailer-"+name, name))
					err := h(srv, &markServerStream{ServerStream: ss, name: name})
					srvLog.add("%s exit err=%v", name, err)
					return err
				}
			}
			clientIC := func(name string) triple.StreamClientInterceptor {
				return func(ctx context.Context, desc *triple.StreamDesc, method string, next triple.Streamer, opts ...triple.CallOption) (triple.ClientStream, error) {
					out, _ := triple.FromOutgoingContext(ctx)
					cliLog.add("%s open %s client=%v server=%v x-client-1=%s", name, method, desc.ClientStreams, desc.ServerStreams, out.Get("x-client-1"))
					cs, err := next(triple.AppendToOutgoingContext(ctx, "x-client-"+name, name), desc, method, opts...)
					if err != nil {
						return nil, err
					}
					return &markClientStream{ClientStream: cs, name: name, log: &cliLog}, nil
				}
			}

			opts := []triple.ServerOption{triple.WithStreamInterceptors(serverIC("a"), serverIC("b"))}
			var addr string
			if mounted {
				s := triple.NewServer(opts...)
				if err := testpbtriple.RegisterEchoServiceHandler(s, &echo{name: "mounted"}); err != nil {
					t.Fatal(err)
				}
				addr = serveMounted(t, s)
			} else {
				addr = startServer(t, opts, nil)
			}
			client := testpbtriple.NewEchoServiceClient(dial(t, addr, triple.WithStreamClientInterceptors(clientIC("1"), clientIC("2"))))
			st, err := client.EchoBidi(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, text := range []string{"m1", "m2"} {
				if err := st.Send(&testpb.EchoRequest{Text: text}); err != nil {
					t.Fatal(err)
				}
				resp, err := st.Recv()
				if err != nil {
					t.Fatal(err)
				}
				// Outbound the first interceptor acts first, inbound last.
				want := text + "|1-send|2-send|a-recv|b-recv|b-send|a-send|2-recv|1-recv"
				if resp.GetText() != want {
					t.Errorf("message path\n got %s\nwant %s", resp.GetText(), want)
				}
				md := resp.GetMetadata()
				if md["x-client-1"] != "1" || md["x-client-2"] != "2" {
					t.Errorf("the handler saw attachments %v, want x-client-1=1 and x-client-2=2", md)
				}
			}
			if err := st.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("end of stream: %v", err)
			}
			h, err := st.Header()
			if err != nil || h.Get("x-header-a") != "a" || h.Get("x-header-b") != "b" {
				t.Errorf("headers %v (%v), want x-header-a and x-header-b", h, err)
			}
			if tr := st.Trailer(); tr.Get("x-trailer-a") != "a" || tr.Get("x-trailer-b") != "b" {
				t.Errorf("trailers %v, want x-trailer-a and x-trailer-b", tr)
			}

			const method = "/shoal.triple.test.EchoService/EchoBidi"
			wantSrv := []string{
				"a enter " + method + " client=true server=true x-client-1=1 x-client-2=2",
				"b enter " + method + " client=true server=true x-client-1=1 x-client-2=2",
				"b exit err=<nil>",
				"a exit err=<nil>",
			}
			wantCli := []string{
				"1 open " + method + " client=true server=true x-client-1=",
				"2 open " + method + " client=true server=true x-client-1=1",
				"2 headers a=a b=b err=<nil>",
				"1 headers a=a b=b err=<nil>",
				"2 end trailers a=a b=b",
				"1 end trailers a=a b=b",
			}
			if got := srvLog.get(); strings.Join(got, "\n") != strings.Join(wantSrv, "\n") {
				t.Errorf("server interceptors\n got %q\nwant %q", got, wantSrv)
			}
			if got := cliLog.get(); strings.Join(got, "\n") != strings.Join(wantCli, "\n") {
				t.Errorf("client interceptors\n got %q\nwant %q", got, wantCli)
			}
		})
	}
}
