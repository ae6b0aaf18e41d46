package triple_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

func TestErrorsCarryCodeMessageAndDetails(t *testing.T) {
	addr := startServer(t, nil, func(s *triple.Server) {
		_ = testpbtriple.RegisterEchoServiceHandler(s, &detailEcho{})
	})
	client := testpbtriple.NewEchoServiceClient(dial(t, addr))
	_, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "100% wrong \u00e9"})
	var e *triple.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *triple.Error", err, err)
	}
	if e.Code() != triple.CodeInvalidArgument || e.Message() != "bad text: 100% wrong \u00e9" {
		t.Fatalf("code=%v message=%q", e.Code(), e.Message())
	}
	if len(e.Details()) != 1 {
		t.Fatalf("details = %v, want one BadRequest", e.Details())
	}
	var br errdetails.BadRequest
	if err := e.Details()[0].UnmarshalTo(&br); err != nil || br.GetFieldViolations()[0].GetField() != "text" {
		t.Fatalf("detail = %v (%v)", &br, err)
	}
}

type detailEcho struct {
	testpbtriple.UnimplementedEchoServiceHandler
}

func (detailEcho) Echo(_ context.Context, req *testpb.EchoRequest) (*testpb.EchoResponse, error) {
	e := triple.Errorf(triple.CodeInvalidArgument, "bad text: %s", req.GetText())
	_ = e.AddDetail(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "text", Description: "wrong"}}})
	return nil, e
}

func TestStreamErrorAfterMessages(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	st, err := client.EchoBidi(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&testpb.EchoRequest{Text: "ok"})
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&testpb.EchoRequest{Text: "boom", FailCode: int32(triple.CodePermissionDenied)})
	_, err = st.Recv()
	if triple.CodeOf(err) != triple.CodePermissionDenied {
		t.Fatalf("err = %v, want PERMISSION_DENIED", err)
	}
}

func TestUnimplemented(t *testing.T) {
	cc := dial(t, startServer(t, nil, nil))
	err := cc.Invoke(ctxT(t), "/no.Such/Method", &testpb.EchoRequest{}, &testpb.EchoResponse{})
	if triple.CodeOf(err) != triple.CodeUnimplemented || !strings.Contains(err.Error(), "no.Such") {
		t.Fatalf("unknown service: %v", err)
	}
	err = cc.Invoke(ctxT(t), "/shoal.triple.test.EchoService/Nope", &testpb.EchoRequest{}, &testpb.EchoResponse{})
	if triple.CodeOf(err) != triple.CodeUnimplemented || !strings.Contains(err.Error(), "Nope") {
		t.Fatalf("unknown method: %v", err)
	}
	// Java callers may lower-case the first letter; Go services answer both.
	if err := cc.Invoke(ctxT(t), "/shoal.triple.test.EchoService/echo", &testpb.EchoRequest{Text: "lc"}, &testpb.EchoResponse{}); err != nil {
		t.Fatalf("lower-case method: %v", err)
	}
}

func TestDeadlinePropagates(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := client.Echo(ctx, &testpb.EchoRequest{SleepMs: 5000})
	if triple.CodeOf(err) != triple.CodeDeadlineExceeded {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
	// WithTimeout works the same way.
	_, err = client.Echo(context.Background(), &testpb.EchoRequest{SleepMs: 5000}, triple.WithTimeout(50*time.Millisecond))
	if triple.CodeOf(err) != triple.CodeDeadlineExceeded {
		t.Fatalf("WithTimeout: %v", err)
	}
}

func TestCancellation(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := client.Echo(ctx, &testpb.EchoRequest{SleepMs: 5000})
	if triple.CodeOf(err) != triple.CodeCanceled {
		t.Fatalf("err = %v, want CANCELED", err)
	}
}

func TestMetadataBothWays(t *testing.T) {
	addr := startServer(t, nil, func(s *triple.Server) {
		_ = testpbtriple.RegisterEchoServiceHandler(s, &metaEcho{})
	})
	client := testpbtriple.NewEchoServiceClient(dial(t, addr, triple.WithApplication("tester")))
	ctx := triple.NewOutgoingContext(ctxT(t), triple.Pairs(
		"x-tenant", "blue",
		"X-Trace-ID", "abc", // upper case survives via tri-header-convert
		"token-bin", "\x00\x01\xff",
		"interface", "reserved: never sent",
	))
	var header, trailer triple.Metadata
	one, none := &triple.HeaderValue{Key: "x-from-header"}, &triple.HeaderValue{Key: "x-absent", Value: "stale"}
	// RequestHeaders encodes its metadata once, when built: the same
	// rules as the context's (case kept through tri-header-convert, -bin
	// in base64, reserved keys dropped), and later changes are not sent.
	extraMD := triple.Pairs("x-peer", "p1", "X-Peer-Case", "kept", "peer-bin", "\x02\xfe", "version", "reserved: never sent")
	extra := triple.RequestHeaders(extraMD)
	extraMD["x-peer"] = []string{"changed after the option was built"}
	resp, err := client.Echo(ctx, &testpb.EchoRequest{}, triple.Header(&header), triple.Trailer(&trailer), one, extra)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Echo(ctx, &testpb.EchoRequest{}, none); err != nil {
		t.Fatal(err)
	}
	if one.Value != "h" || none.Value != "" {
		t.Fatalf("HeaderValue: x-from-header %q (want h), x-absent %q (want empty)", one.Value, none.Value)
	}
	got := resp.GetMetadata()
	if got["x-tenant"] != "blue" || got["X-Trace-ID"] != "abc" || got["token-bin"] != "0001ff" || got["@app"] != "tester" || got["x-peer"] != "p1" ||
		got["X-Peer-Case"] != "kept" || got["peer-bin"] != "02fe" {
		t.Fatalf("server saw %q", got)
	}
	if _, ok := got["interface"]; ok || got["version"] == "reserved: never sent" {
		t.Fatal("a reserved attachment was sent")
	}
	if header.Get("x-from-header") != "h" || trailer.Get("x-from-trailer") != "t" {
		t.Fatalf("header %v trailer %v", header, trailer)
	}
}

type metaEcho struct {
	testpbtriple.UnimplementedEchoServiceHandler
}

func (metaEcho) Echo(ctx context.Context, _ *testpb.EchoRequest) (*testpb.EchoResponse, error) {
	if err := triple.SetHeader(ctx, triple.Pairs("x-from-header", "h")); err != nil {
		return nil, err
	}
	if err := triple.SetTrailer(ctx, triple.Pairs("x-from-trailer", "t")); err != nil {
		return nil, err
	}
	return &testpb.EchoResponse{Metadata: seen(ctx)}, nil
}

func (metaEcho) EchoServer(_ *testpb.EchoRequest, s triple.ServerStreamServer[testpb.EchoResponse]) error {
	_ = s.SetHeader(triple.Pairs("x-from-header", "h"))
	s.SetTrailer(triple.Pairs("x-from-trailer", "t"))
	return s.Send(&testpb.EchoResponse{Metadata: seen(s.Context())})
}

func TestGroupAndVersion(t *testing.T) {
	addr := startServer(t, nil, func(s *triple.Server) {
		for _, reg := range []struct {
			name string
			opts []triple.RegisterOption
		}{
			{"plain", nil},
			{"g1-2.0.0", []triple.RegisterOption{triple.ServiceGroup("g1"), triple.ServiceVersion("2.0.0")}},
			{"g1-1.0.0", []triple.RegisterOption{triple.ServiceGroup("g1"), triple.ServiceVersion("1.0.0")}},
			{"g2-none", []triple.RegisterOption{triple.ServiceGroup("g2")}},
		} {
			if err := testpbtriple.RegisterEchoServiceHandler(s, &echo{name: reg.name}, reg.opts...); err != nil {
				t.Fatal(err)
			}
		}
	})
	client := testpbtriple.NewEchoServiceClient(dial(t, addr))
	tests := []struct {
		group, version, want string
		code                 triple.Code
	}{
		{"", "", "plain", 0},
		{"g1", "2.0.0", "g1-2.0.0", 0},
		{"g1", "9.9.9", "g1-1.0.0", 0}, // no exact version: 1.0.0
		{"g2", "3.0.0", "g2-none", 0},  // then no version
		{"g3", "", "", triple.CodeUnimplemented},
	}
	for _, tt := range tests {
		resp, err := client.Echo(ctxT(t), &testpb.EchoRequest{}, triple.WithGroup(tt.group), triple.WithVersion(tt.version))
		if tt.code != 0 {
			if triple.CodeOf(err) != tt.code {
				t.Errorf("group %q version %q: %v, want %v", tt.group, tt.version, err, tt.code)
			}
			continue
		}
		if err != nil {
			t.Errorf("group %q version %q: %v", tt.group, tt.version, err)
			continue
		}
		md := resp.GetMetadata()
		if md["@server"] != tt.want || md["@group"] != tt.group || md["@version"] != tt.version {
			t.Errorf("group %q version %q served by %q (saw %q/%q), want %q", tt.group, tt.version, md["@server"], md["@group"], md["@version"], tt.want)
		}
	}
}

func TestLargeMessagesAndLimits(t *testing.T) {
	addr := startServer(t, nil, nil)
	client := testpbtriple.NewEchoServiceClient(dial(t, addr))
	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16) // 4 MiB
	resp, err := client.Echo(ctxT(t), &testpb.EchoRequest{Payload: big})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.GetPayload(), big) {
		t.Fatal("4 MiB payload corrupted")
	}
	// 9 MiB is over the 8 MiB default: refused before it is sent...
	_, err = client.Echo(ctxT(t), &testpb.EchoRequest{Payload: make([]byte, 9<<20)})
	if triple.CodeOf(err) != triple.CodeResourceExhausted {
		t.Fatalf("9 MiB send: %v, want RESOURCE_EXHAUSTED", err)
	}
	// ...and by the server when the client allows more.
	loose := testpbtriple.NewEchoServiceClient(dial(t, addr, triple.WithMaxSendMessageSize(32<<20)))
	_, err = loose.Echo(ctxT(t), &testpb.EchoRequest{Payload: make([]byte, 9<<20)})
	if triple.CodeOf(err) != triple.CodeResourceExhausted {
		t.Fatalf("9 MiB receive: %v, want RESOURCE_EXHAUSTED", err)
	}
}

func TestGzip(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil), triple.WithGzip()))
	payload := bytes.Repeat([]byte("compressible "), 10000)
	resp, err := client.Echo(ctxT(t), &testpb.EchoRequest{Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.GetPayload(), payload) {
		t.Fatal("payload changed through gzip")
	}
}

func TestConcurrentStreams(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			st, err := client.EchoBidi(ctxT(t))
			if err != nil {
				errs <- err
				return
			}
			for j := range 10 {
				text := fmt.Sprintf("%d-%d", i, j)
				if err := st.Send(&testpb.EchoRequest{Text: text}); err != nil {
					errs <- err
					return
				}
				resp, err := st.Recv()
				if err != nil || resp.GetText() != text {
					errs <- fmt.Errorf("stream %d: %v: %w", i, resp, err)
					return
				}
			}
			_ = st.CloseSend()
			if _, err := st.Recv(); !errors.Is(err, io.EOF) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestGracefulShutdownDrainsCalls(t *testing.T) {
	s := triple.NewServer()
	_ = testpbtriple.RegisterEchoServiceHandler(s, &echo{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	client := testpbtriple.NewEchoServiceClient(dial(t, lis.Addr().String()))
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 10)
	for range 10 {
		go func() {
			_, err := client.Echo(context.Background(), &testpb.EchoRequest{SleepMs: 300})
			results <- err
		}()
	}
	time.Sleep(100 * time.Millisecond) // the calls are in flight
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for range 10 {
		if err := <-results; err != nil {
			t.Errorf("in-flight call failed during graceful shutdown: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{}); triple.CodeOf(err) != triple.CodeUnavailable {
		t.Fatalf("call after shutdown: %v, want UNAVAILABLE", err)
	}
}

func TestGarbageOnThePortKeepsServing(t *testing.T) {
	addr := startServer(t, nil, nil)
	for _, junk := range []string{"\x00\x01\x02garbage\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte(junk))
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.ReadAll(c)
		_ = c.Close()
	}
	client := testpbtriple.NewEchoServiceClient(dial(t, addr))
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "still here"}); err != nil {
		t.Fatalf("after garbage: %v", err)
	}
}

func TestBadHeaders(t *testing.T) {
	addr := startServer(t, nil, nil)
	h2 := &http.Client{Transport: h2cTransport()}
	defer h2.CloseIdleConnections()
	frame := []byte{0, 0, 0, 0, 0}
	tests := []struct {
		name   string
		header map[string]string
		body   []byte
		code   string
	}{
		{"bad timeout", map[string]string{"grpc-timeout": "soon"}, frame, "13"}, // INTERNAL, as grpc-go answers
		{"bad tri timeout", map[string]string{"tri-service-timeout": "-1"}, frame, "3"},
		{"unknown encoding", map[string]string{"grpc-encoding": "snappy2"}, frame, "12"},
		{"truncated frame", nil, []byte{0, 0, 0, 0, 9, 1, 2}, "13"},
		{"oversized frame", nil, []byte{0, 0xff, 0xff, 0xff, 0xff}, "8"},
		{"bad flags", nil, []byte{0x80, 0, 0, 0, 0}, "13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/shoal.triple.test.EchoService/Echo", bytes.NewReader(tt.body))
			req.Header.Set("content-type", "application/grpc")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := h2.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			got := resp.Header.Get("grpc-status")
			if got == "" {
				got = resp.Trailer.Get("grpc-status")
			}
			if got != tt.code {
				t.Fatalf("grpc-status %q (%q), want %s", got, resp.Header.Get("grpc-message")+resp.Trailer.Get("grpc-message"), tt.code)
			}
		})
	}
}

func h2cTransport() *http.Transport {
	tr := &http.Transport{}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return tr
}

func TestHTTP1JSON(t *testing.T) {
	addr := startServer(t, nil, nil)
	hc := &http.Client{Timeout: 5 * time.Second}
	post := func(path, ct, body string, hdr ...string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.ProtoMajor != 1 {
			t.Errorf("HTTP/%d.%d, want HTTP/1.1", resp.ProtoMajor, resp.ProtoMinor)
		}
		return resp.StatusCode, string(b)
	}
	code, body := post("/shoal.triple.test.EchoService/Echo", "application/json", `{"text":"curl"}`, "x-tenant", "json")
	if code != 200 || !strings.Contains(body, `"text":"curl"`) || !strings.Contains(body, `"x-tenant":"json"`) {
		t.Fatalf("%d %s", code, body)
	}
	code, body = post("/shoal.triple.test.EchoService/Echo", "application/json", `{"failCode":5}`)
	if code != 404 || !strings.Contains(body, `"code":"NOT_FOUND"`) {
		t.Fatalf("error: %d %s", code, body)
	}
	code, body = post("/shoal.triple.test.EchoService/Echo", "application/json", `{}`, "grpc-timeout", "+1S")
	if code != http.StatusBadRequest || !strings.Contains(body, "malformed grpc-timeout") {
		t.Fatalf("malformed grpc-timeout: %d %s", code, body)
	}
	code, body = post("/shoal.triple.test.EchoService/Echo", "application/json", `{}`, "grpc-timeout", "0S")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, `"code":"DEADLINE_EXCEEDED"`) {
		t.Fatalf("expired grpc-timeout: %d %s", code, body)
	}
	code, body = post("/shoal.triple.test.EchoService/Echo", "text/plain", `hi`)
	if code != http.StatusUnsupportedMediaType || !strings.Contains(body, "application/json") {
		t.Fatalf("wrong content type: %d %s", code, body)
	}
	code, body = post("/shoal.triple.test.EchoService/EchoBidi", "application/json", `{}`)
	if code != http.StatusNotImplemented || !strings.Contains(body, "streaming") {
		t.Fatalf("stream over JSON: %d %s", code, body)
	}
	code, _ = post("/shoal.triple.test.EchoService/Echo", "application/json", `{not json`)
	if code != 400 {
		t.Fatalf("malformed JSON: %d, want 400", code)
	}
}

func TestUnaryInterceptorsRunInOrder(t *testing.T) {
	var order []string
	var mu sync.Mutex
	mark := func(s string) triple.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *triple.UnaryServerInfo, h triple.UnaryHandler) (any, error) {
			mu.Lock()
			order = append(order, s+":"+info.FullMethod)
			mu.Unlock()
			return h(ctx, req)
		}
	}
	addr := startServer(t, []triple.ServerOption{triple.WithUnaryInterceptors(mark("a"), mark("b"))}, nil)
	var clientOrder []string
	cmark := func(s string) triple.UnaryClientInterceptor {
		return func(ctx context.Context, method string, req, reply any, next triple.UnaryInvoker, opts ...triple.CallOption) error {
			clientOrder = append(clientOrder, s)
			return next(ctx, method, req, reply, opts...)
		}
	}
	client := testpbtriple.NewEchoServiceClient(dial(t, addr, triple.WithUnaryClientInterceptors(cmark("1"), cmark("2"))))
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	want := "a:/shoal.triple.test.EchoService/Echo,b:/shoal.triple.test.EchoService/Echo"
	if got := strings.Join(order, ","); got != want {
		t.Errorf("server order %s, want %s", got, want)
	}
	if got := strings.Join(clientOrder, ","); got != "1,2" {
		t.Errorf("client order %s", got)
	}
}

func TestBuiltinsIgnoreGroup(t *testing.T) {
	cc := dial(t, startServer(t, nil, nil))
	req := &healthpb.HealthCheckRequest{}
	resp := new(healthpb.HealthCheckResponse)
	if err := cc.Invoke(ctxT(t), "/grpc.health.v1.Health/Check", req, resp, triple.WithGroup("g1"), triple.WithVersion("2.0.0")); err != nil {
		t.Fatalf("health with a group: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status %v", resp.GetStatus())
	}
	// Application services still need their group.
	err := cc.Invoke(ctxT(t), "/shoal.triple.test.EchoService/Echo", &testpb.EchoRequest{}, new(testpb.EchoResponse), triple.WithGroup("g1"))
	if triple.CodeOf(err) != triple.CodeUnimplemented {
		t.Fatalf("echo in a group it is not exported in: %v", err)
	}
}
