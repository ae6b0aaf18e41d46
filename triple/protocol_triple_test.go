package triple_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

const echoPath = "/shoal.triple.test.EchoService/Echo"

// tripleResp is one raw triple-flavour response, as a net/http client
// (standing in for dubbo-go's, which is net/http based) sees it.
type tripleResp struct {
	status int
	proto  int
	header http.Header
	body   []byte
}

// wireErr decodes the JSON error body.
func (r tripleResp) wireErr(t *testing.T) (code, msg string) {
	t.Helper()
	var w struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(r.body, &w); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error content type %q, want application/json", ct)
	}
	return w.Code, w.Message
}

// postTriple sends a triple-flavour request with hc (HTTP/1.1 or h2c).
func postTriple(t *testing.T, hc *http.Client, addr string, req *testpb.EchoRequest, hdr ...string) tripleResp {
	t.Helper()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return postRaw(t, hc, addr, echoPath, body, append([]string{
		"Content-Type", "application/proto", "Triple-Protocol-Version", "0.1.0",
	}, hdr...)...)
}

func postRaw(t *testing.T, hc *http.Client, addr, path string, body []byte, hdr ...string) tripleResp {
	t.Helper()
	hr, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		hr.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return tripleResp{status: resp.StatusCode, proto: resp.ProtoMajor, header: resp.Header, body: b}
}

// transports are the server's two transports: net/http over HTTP/1.1, and
// the server's own HTTP/2 (h2c prior knowledge).
func transports() map[string]*http.Client {
	return map[string]*http.Client{
		"http1": {Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}},
		"h2c":   {Timeout: 10 * time.Second, Transport: h2cTransport()},
	}
}

func TestTripleFlavourServerWire(t *testing.T) {
	addr := startServer(t, nil, func(s *triple.Server) {
		_ = testpbtriple.RegisterEchoServiceHandler(s, &echo{name: "plain"})
		_ = testpbtriple.RegisterEchoServiceHandler(s, &echo{name: "grouped"}, triple.ServiceGroup("g1"), triple.ServiceVersion("2.0.0"))
		_ = testpbtriple.RegisterEchoServiceHandler(s, &metaEcho{}, triple.ServiceGroup("meta"))
	})
	for name, hc := range transports() {
		t.Run(name, func(t *testing.T) {
			wantProto := map[string]int{"http1": 1, "h2c": 2}[name]
			r := postTriple(t, hc, addr, &testpb.EchoRequest{Text: "hi", Payload: []byte{0, 1, 2}},
				"Tri-Service-Group", "g1", "Tri-Service-Version", "2.0.0", "X-Tenant", "blue", "Triple-Timeout-Ms", "5000")
			if r.status != 200 || r.proto != wantProto {
				t.Fatalf("HTTP/%d %d %q", r.proto, r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/proto" {
				t.Errorf("content type %q, want application/proto", ct)
			}
			var resp testpb.EchoResponse
			if err := proto.Unmarshal(r.body, &resp); err != nil {
				t.Fatalf("body is not a bare EchoResponse: %v", err)
			}
			md := resp.GetMetadata()
			if resp.GetText() != "hi" || md["@server"] != "grouped" || md["@group"] != "g1" || md["@version"] != "2.0.0" || md["x-tenant"] != "blue" {
				t.Fatalf("reply %v", &resp)
			}
			for _, k := range []string{"triple-protocol-version", "triple-timeout-ms", "content-type", "tri-service-group"} {
				if _, ok := md[k]; ok {
					t.Errorf("protocol header %s reached the handler as an attachment", k)
				}
			}

			// No group: the plain export.
			r = postTriple(t, hc, addr, &testpb.EchoRequest{})
			if err := proto.Unmarshal(r.body, &resp); r.status != 200 || err != nil || resp.GetMetadata()["@server"] != "plain" {
				t.Fatalf("ungrouped: %d %v %v", r.status, err, &resp)
			}

			// Response headers, and trailers as Trailer- headers.
			r = postTriple(t, hc, addr, &testpb.EchoRequest{}, "Tri-Service-Group", "meta")
			if r.status != 200 || r.header.Get("X-From-Header") != "h" || r.header.Get("Trailer-X-From-Trailer") != "t" {
				t.Fatalf("metadata: %d %v", r.status, r.header)
			}

			// An empty body is the empty message.
			r = postRaw(t, hc, addr, echoPath, nil, "Content-Type", "application/proto")
			if r.status != 200 {
				t.Fatalf("empty request: %d %q", r.status, r.body)
			}

			// JSON with Triple-Protocol-Version is the triple flavour too:
			// its errors are the triple JSON body.
			r = postRaw(t, hc, addr, echoPath, []byte(`{"failCode":5}`), "Content-Type", "application/json", "Triple-Protocol-Version", "0.1.0")
			if code, _ := r.wireErr(t); r.status != 404 || code != "not_found" {
				t.Fatalf("JSON triple error: %d %q", r.status, r.body)
			}
			r = postRaw(t, hc, addr, echoPath, []byte(`{"text":"j"}`), "Content-Type", "application/json", "Triple-Protocol-Version", "0.1.0")
			if r.status != 200 || !strings.Contains(string(r.body), `"text":"j"`) {
				t.Fatalf("JSON triple: %d %q", r.status, r.body)
			}
		})
	}
}

func TestTripleFlavourServerErrors(t *testing.T) {
	addr := startServer(t, []triple.ServerOption{triple.WithMaxRecvMessageSize(64 << 10)}, nil)
	hc := transports()["h2c"]
	tests := []struct {
		name   string
		req    *testpb.EchoRequest
		hdr    []string
		status int
		code   string
		msg    string
	}{
		{"not found", &testpb.EchoRequest{FailCode: 5, Text: "x"}, nil, 404, "not_found", "failed as asked: x"},
		{"unimplemented", &testpb.EchoRequest{FailCode: 12}, nil, 404, "unimplemented", ""},
		{"unavailable", &testpb.EchoRequest{FailCode: 14}, nil, 503, "unavailable", ""},
		{"permission", &testpb.EchoRequest{FailCode: 7}, nil, 403, "permission_denied", ""},
		{"deadline", &testpb.EchoRequest{SleepMs: 5000}, []string{"Triple-Timeout-Ms", "50"}, 408, "deadline_exceeded", ""},
		{"bad timeout", &testpb.EchoRequest{}, []string{"Triple-Timeout-Ms", "soon"}, 400, "invalid_argument", "Triple-Timeout-Ms"},
		{"timeout too long", &testpb.EchoRequest{}, []string{"Triple-Timeout-Ms", "12345678901"}, 400, "invalid_argument", "10 decimal digits"},
		{"bad version", &testpb.EchoRequest{}, []string{"Triple-Protocol-Version", "9.9.9"}, 400, "invalid_argument", `must be "0.1.0"`},
		{"oversized", &testpb.EchoRequest{Payload: make([]byte, 100<<10)}, nil, 429, "resource_exhausted", "limit of 65536"},
		{"unknown encoding", &testpb.EchoRequest{}, []string{"Content-Encoding", "br"}, 404, "unimplemented", "Content-Encoding"},
		{"unknown group", &testpb.EchoRequest{}, []string{"Tri-Service-Group", "nope"}, 404, "unimplemented", "unknown service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postTriple(t, hc, addr, tt.req, tt.hdr...)
			code, msg := r.wireErr(t)
			if r.status != tt.status || code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Fatalf("%d %q %q, want %d %q containing %q", r.status, code, msg, tt.status, tt.code, tt.msg)
			}
		})
	}
	r := postRaw(t, hc, addr, "/shoal.triple.test.EchoService/EchoBidi", nil, "Content-Type", "application/proto")
	if code, msg := r.wireErr(t); r.status != 404 || code != "unimplemented" || !strings.Contains(msg, "unary only") {
		t.Fatalf("stream over the triple flavour: %d %q %q", r.status, code, msg)
	}
}

func TestTripleFlavourServerGzip(t *testing.T) {
	addr := startServer(t, []triple.ServerOption{triple.WithMaxRecvMessageSize(64 << 10)}, nil)
	for name, hc := range transports() {
		t.Run(name, func(t *testing.T) {
			payload := bytes.Repeat([]byte("squeeze "), 4096)
			raw, _ := proto.Marshal(&testpb.EchoRequest{Payload: payload})
			var zb bytes.Buffer
			zw := gzip.NewWriter(&zb)
			_, _ = zw.Write(raw)
			_ = zw.Close()
			r := postRaw(t, hc, addr, echoPath, zb.Bytes(), "Content-Type", "application/proto",
				"Content-Encoding", "gzip", "Accept-Encoding", "gzip")
			if r.status != 200 || r.header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("%d %v %q", r.status, r.header, r.body)
			}
			zr, err := gzip.NewReader(bytes.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := io.ReadAll(zr)
			var resp testpb.EchoResponse
			if err := proto.Unmarshal(plain, &resp); err != nil || !bytes.Equal(resp.GetPayload(), payload) {
				t.Fatalf("gzip reply: %v", err)
			}
			// A small body that inflates past the limit is refused.
			bomb, _ := proto.Marshal(&testpb.EchoRequest{Payload: make([]byte, 1<<20)})
			zb.Reset()
			zw.Reset(&zb)
			_, _ = zw.Write(bomb)
			_ = zw.Close()
			r = postRaw(t, hc, addr, echoPath, zb.Bytes(), "Content-Type", "application/proto", "Content-Encoding", "gzip")
			if code, _ := r.wireErr(t); r.status != 429 || code != "resource_exhausted" {
				t.Fatalf("gzip bomb: %d %q", r.status, r.body)
			}
			r = postRaw(t, hc, addr, echoPath, []byte("not gzip"), "Content-Type", "application/proto", "Content-Encoding", "gzip")
			if r.status < 400 {
				t.Fatalf("bad gzip: %d", r.status)
			}
		})
	}
}

// protoEcho records the protocol each call arrived in.
type protoEcho struct {
	echo
	seen chan string
}

func (p *protoEcho) Echo(ctx context.Context, req *testpb.EchoRequest) (*testpb.EchoResponse, error) {
	ci, _ := triple.CallInfoFromContext(ctx)
	select {
	case p.seen <- ci.Protocol:
	default:
	}
	return p.reply(ctx, req)
}

func TestTripleFlavourClient(t *testing.T) {
	pe := &protoEcho{echo: echo{name: "grouped"}, seen: make(chan string, 1)}
	addr := startServer(t, []triple.ServerOption{triple.WithMaxRecvMessageSize(64 << 10)}, func(s *triple.Server) {
		_ = testpbtriple.RegisterEchoServiceHandler(s, &echo{name: "plain"})
		_ = testpbtriple.RegisterEchoServiceHandler(s, pe, triple.ServiceGroup("g1"), triple.ServiceVersion("2.0.0"))
		_ = testpbtriple.RegisterEchoServiceHandler(s, &metaEcho{}, triple.ServiceGroup("meta"))
		_ = testpbtriple.RegisterEchoServiceHandler(s, &detailEcho{}, triple.ServiceGroup("detail"))
	})
	client := testpbtriple.NewEchoServiceClient(dial(t, addr, triple.WithProtocol(triple.ProtocolTriple), triple.WithApplication("app1")))

	ctx := triple.NewOutgoingContext(ctxT(t), triple.Pairs("x-tenant", "blue", "X-Trace-ID", "abc", "token-bin", "\x00\xff"))
	resp, err := client.Echo(ctx, &testpb.EchoRequest{Text: "hi"}, triple.WithGroup("g1"), triple.WithVersion("2.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if p := <-pe.seen; p != "triple" {
		t.Fatalf("the server saw protocol %q, want triple", p)
	}
	md := resp.GetMetadata()
	if resp.GetText() != "hi" || md["@server"] != "grouped" || md["@group"] != "g1" || md["@version"] != "2.0.0" ||
		md["x-tenant"] != "blue" || md["X-Trace-ID"] != "abc" || md["token-bin"] != "00ff" || md["@app"] != "app1" {
		t.Fatalf("reply %v", md)
	}
	// A per-call option overrides the connection's protocol.
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{}, triple.WithGroup("g1"), triple.WithVersion("2.0.0"), triple.WithProtocol(triple.ProtocolGRPC)); err != nil {
		t.Fatal(err)
	}
	if p := <-pe.seen; p != "grpc" {
		t.Fatalf("the server saw protocol %q, want grpc", p)
	}

	var header, trailer triple.Metadata
	hv := &triple.HeaderValue{Key: "x-from-header"}
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{}, triple.WithGroup("meta"), triple.Header(&header), triple.Trailer(&trailer), hv); err != nil {
		t.Fatal(err)
	}
	if header.Get("x-from-header") != "h" || trailer.Get("x-from-trailer") != "t" || hv.Value != "h" {
		t.Fatalf("header %v trailer %v header value %q", header, trailer, hv.Value)
	}

	for _, c := range []triple.Code{triple.CodeNotFound, triple.CodeUnimplemented, triple.CodeInvalidArgument, triple.CodeUnavailable, triple.CodeInternal, triple.CodeUnauthenticated, triple.CodeAborted} {
		_, err := client.Echo(ctxT(t), &testpb.EchoRequest{FailCode: int32(c), Text: "t"})
		var e *triple.Error
		if !errors.As(err, &e) || e.Code() != c || e.Message() != "failed as asked: t" {
			t.Errorf("code %v: got %v", c, err)
		}
	}
	_, err = client.Echo(ctxT(t), &testpb.EchoRequest{}, triple.WithGroup("detail"))
	var e *triple.Error
	if !errors.As(err, &e) || e.Code() != triple.CodeInvalidArgument || len(e.Details()) != 1 {
		t.Fatalf("details: %v", err)
	}
	var br errdetails.BadRequest
	if err := e.Details()[0].UnmarshalTo(&br); err != nil || br.GetFieldViolations()[0].GetField() != "text" {
		t.Fatalf("detail = %v (%v)", &br, err)
	}

	// The deadline travels as Triple-Timeout-Ms: the server gives up too.
	start := time.Now()
	_, err = client.Echo(ctxT(t), &testpb.EchoRequest{SleepMs: 5000}, triple.WithTimeout(100*time.Millisecond))
	if triple.CodeOf(err) != triple.CodeDeadlineExceeded || time.Since(start) > 4*time.Second {
		t.Fatalf("deadline: %v after %v", err, time.Since(start))
	}

	// Limits: the server refuses a body over its limit; gzip round trips.
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{Payload: make([]byte, 100<<10)}); triple.CodeOf(err) != triple.CodeResourceExhausted {
		t.Fatalf("oversized: %v", err)
	}
	payload := bytes.Repeat([]byte("squeeze "), 4096)
	resp, err = client.Echo(ctxT(t), &testpb.EchoRequest{Payload: payload}, triple.WithCallGzip())
	if err != nil || !bytes.Equal(resp.GetPayload(), payload) {
		t.Fatalf("gzip: %v", err)
	}
	small := testpbtriple.NewEchoServiceClient(dial(t, addr, triple.WithProtocol(triple.ProtocolTriple), triple.WithMaxRecvMessageSize(1024)))
	if _, err := small.Echo(ctxT(t), &testpb.EchoRequest{Payload: make([]byte, 4096)}); triple.CodeOf(err) != triple.CodeResourceExhausted {
		t.Fatalf("reply over the client's limit: %v", err)
	}

	// Streams have no triple flavour: they still work, as gRPC.
	st, err := client.EchoServer(ctxT(t), &testpb.EchoRequest{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := recvCount(t, st); n != 2 {
		t.Fatalf("%d stream messages, want 2", n)
	}
}

func TestWithProtocolRejectsUnknown(t *testing.T) {
	if _, err := triple.Dial("127.0.0.1:1", triple.WithProtocol(triple.Protocol(7))); err == nil || !strings.Contains(err.Error(), "ProtocolTriple") {
		t.Fatalf("Dial with an unknown protocol: %v", err)
	}
}

// recvCount reads a server stream to its end and returns how many messages
// it carried; any error but io.EOF fails the test.
func recvCount[M any](t *testing.T, st interface{ Recv() (M, error) }) int {
	t.Helper()
	for n := 0; ; n++ {
		if _, err := st.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return n
		}
	}
}
