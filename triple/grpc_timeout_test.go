package triple_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
)

// countingEcho answers Echo and counts the calls that reached it.
type countingEcho struct{ ran atomic.Int64 }

func (c *countingEcho) handle(dec func(any) error) (any, error) {
	c.ran.Add(1)
	req := new(testpb.EchoRequest)
	if err := dec(req); err != nil {
		return nil, err
	}
	return &testpb.EchoResponse{Text: req.GetText()}, nil
}

func (c *countingEcho) tripleDesc() *triple.ServiceDesc {
	return &triple.ServiceDesc{ServiceName: "shoal.triple.test.EchoService", Methods: []triple.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ triple.UnaryServerInterceptor) (any, error) {
			return c.handle(dec)
		},
	}}}
}

func (c *countingEcho) grpcDesc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{ServiceName: "shoal.triple.test.EchoService", HandlerType: (*any)(nil), Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			return c.handle(dec)
		},
	}}}
}

// timeoutTarget is a server that a raw grpc-timeout header is sent to.
type timeoutTarget struct {
	name string
	addr string
	echo *countingEcho
}

// TestGRPCTimeoutOverTheWire sends grpc-timeout values that gRPC's spec
// forbids or that have already expired, as raw HTTP/2 requests, to Shoal's
// own transport, to a Server mounted in net/http, and to a grpc-go server
// for reference. Expired ones end DEADLINE_EXCEEDED and malformed ones
// INTERNAL (grpc-go's code), and neither reaches the handler.
func TestGRPCTimeoutOverTheWire(t *testing.T) {
	native := &countingEcho{}
	nativeAddr := startServer(t, nil, func(s *triple.Server) {
		if err := s.Register(native.tripleDesc(), struct{}{}); err != nil {
			t.Fatal(err)
		}
	})

	mounted := &countingEcho{}
	ms := triple.NewServer()
	if err := ms.Register(mounted.tripleDesc(), struct{}{}); err != nil {
		t.Fatal(err)
	}
	mountedAddr := serveMounted(t, ms)

	reference := &countingEcho{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	gs.RegisterService(reference.grpcDesc(), struct{}{})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	targets := []timeoutTarget{
		{name: "shoal", addr: nativeAddr, echo: native},
		{name: "shoal-net-http", addr: mountedAddr, echo: mounted},
		{name: "grpc-go", addr: lis.Addr().String(), echo: reference},
	}
	cases := []struct {
		timeout string
		code    string
		runs    bool
	}{
		{"1S", "0", true}, // the control: the same request with a valid timeout reaches the handler
		{"0S", "4", false},
		{"0n", "4", false},
		{"1n", "4", false},
		{"", "13", false},
		{"+1S", "13", false},
		{"-1S", "13", false},
		{"123456789S", "13", false},
		{"1s", "13", false},
		{"soon", "13", false},
	}
	hc := &http.Client{Transport: h2cTransport()}
	defer hc.CloseIdleConnections()
	for _, tg := range targets {
		for _, tc := range cases {
			t.Run(tg.name+"/"+tc.timeout, func(t *testing.T) {
				before := tg.echo.ran.Load()
				code, msg := rawGRPCCall(t, hc, tg.addr, tc.timeout)
				if code != tc.code {
					t.Errorf("grpc-timeout %q: grpc-status %s (%s), want %s", tc.timeout, code, msg, tc.code)
				}
				if ran := tg.echo.ran.Load() > before; ran != tc.runs && tg.name != "grpc-go" {
					t.Errorf("grpc-timeout %q: handler ran: %v, want %v", tc.timeout, ran, tc.runs)
				}
			})
		}
	}
}

// rawGRPCCall posts an empty EchoRequest with the given grpc-timeout and
// returns grpc-status and grpc-message.
func rawGRPCCall(t *testing.T, hc *http.Client, addr, timeout string) (code, msg string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/shoal.triple.test.EchoService/Echo", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/grpc")
	req.Header.Set("te", "trailers")
	req.Header["grpc-timeout"] = []string{timeout}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("grpc-timeout %q: read response: %v", timeout, err)
	}
	if code = resp.Header.Get("grpc-status"); code != "" {
		return code, resp.Header.Get("grpc-message")
	}
	return resp.Trailer.Get("grpc-status"), resp.Trailer.Get("grpc-message")
}
