package triple_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
)

// RFC 9113 conformance of the server, rule by rule, with the attack
// tests' frame-level client (attack_test.go): stream states (5.1, 6.1,
// 6.4), self-dependent priorities (5.3.1), malformed requests (8.1, 8.2,
// 8.3) and the connection preface (3.4). Each case opens its own
// connection, sends the frames under test, then a PING, and reads what
// the server answered before the PING's ACK: a stream error is a
// RST_STREAM and the connection carries on; a connection error is a
// GOAWAY. interop's TestH2Spec runs h2spec itself against the server.

// stateEcho keeps EchoBidi open until the call is cancelled, and ends
// EchoClient at once, while the client's side is still open (the server
// then sends its trailers and RST_STREAM NO_ERROR).
type stateEcho struct{ echo }

func (stateEcho) EchoBidi(s triple.BidiStreamServer[testpb.EchoRequest, testpb.EchoResponse]) error {
	<-s.Context().Done()
	return s.Context().Err()
}

func (stateEcho) EchoClient(s triple.ClientStreamServer[testpb.EchoRequest, testpb.EchoResponse]) error {
	return s.SendAndClose(&testpb.EchoResponse{Text: "done early"})
}

// emptyMsg is one gRPC message: an empty EchoRequest.
var emptyMsg = []byte{0, 0, 0, 0, 0}

// fields encodes a header block of exactly the fields kv (name, value,
// ...), in order.
func (a *attacker) fields(kv ...string) []byte {
	a.hbuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = a.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return bytes.Clone(a.hbuf.Bytes())
}

// send writes frames built with frame.
func (a *attacker) send(frames ...[]byte) {
	a.t.Helper()
	_ = a.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.nc.Write(slices.Concat(frames...)); err != nil {
		a.t.Fatal(err)
	}
}

// awaitEnd reads until the server ends stream id with END_STREAM.
func (a *attacker) awaitEnd(id uint32) {
	a.t.Helper()
	_ = a.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = a.nc.SetReadDeadline(time.Time{}) }()
	for {
		f, err := a.fr.ReadFrame()
		if err != nil {
			a.t.Fatalf("waiting for the end of stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			if f.StreamID == id && f.StreamEnded() {
				return
			}
		case *http2.DataFrame:
			if f.StreamID == id && f.StreamEnded() {
				return
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				a.t.Fatalf("stream %d reset (%v) before it ended", id, f.ErrCode)
			}
		case *http2.GoAwayFrame:
			a.t.Fatalf("GOAWAY %v (%q) before stream %d ended", f.ErrCode, f.DebugData(), id)
		}
	}
}

// sync sends the sync PING and reads until its ACK or the end.
func (a *attacker) sync() outcome {
	a.sendSyncPing()
	return a.read()
}

func headersFrame(id uint32, end bool, block []byte) []byte {
	flags := http2.FlagHeadersEndHeaders
	if end {
		flags |= http2.FlagHeadersEndStream
	}
	return frame(nil, http2.FrameHeaders, flags, id, block)
}

func dataFrame(id uint32, end bool, p []byte) []byte {
	var flags http2.Flags
	if end {
		flags = http2.FlagDataEndStream
	}
	return frame(nil, http2.FrameData, flags, id, p)
}

func rstFrame(id uint32, code http2.ErrCode) []byte {
	return frame(nil, http2.FrameRSTStream, 0, id, binary.BigEndian.AppendUint32(nil, uint32(code)))
}

func windowUpdateFrame(id, inc uint32) []byte {
	return frame(nil, http2.FrameWindowUpdate, 0, id, binary.BigEndian.AppendUint32(nil, inc))
}

func priorityFrame(id, dep uint32) []byte {
	return frame(nil, http2.FramePriority, 0, id, append(binary.BigEndian.AppendUint32(nil, dep), 15))
}

// wantReset checks that the server reset stream id with code and kept the
// connection.
func (o outcome) wantReset(t *testing.T, id uint32, code http2.ErrCode) {
	t.Helper()
	switch {
	case o.goAway:
		t.Errorf("GOAWAY %v (%q), want RST_STREAM %v on stream %d and the connection kept", o.code, o.debug, code, id)
	case !o.synced:
		t.Errorf("the connection ended (%v), want RST_STREAM %v on stream %d and the connection kept", o.readErr, code, id)
	case o.rst[code] != 1 || !slices.Contains(o.rstIDs, id):
		t.Errorf("resets %v on streams %v, want RST_STREAM %v on stream %d", o.rst, o.rstIDs, code, id)
	}
}

// wantAccepted checks that the server took everything without an error:
// no GOAWAY, no RST_STREAM but NO_ERROR (a call it ended before the client
// did) and REFUSED_STREAM (past the stream limit).
func (o outcome) wantAccepted(t *testing.T) {
	t.Helper()
	if o.goAway || !o.synced {
		t.Errorf("the connection ended (GOAWAY %v %v %q, %v), want it kept", o.goAway, o.code, o.debug, o.readErr)
	}
	for code, n := range o.rst {
		if n > 0 && http2.ErrCode(code) != http2.ErrCodeNo && http2.ErrCode(code) != http2.ErrCodeRefusedStream {
			t.Errorf("%d RST_STREAM %v on streams %v, want none", n, http2.ErrCode(code), o.rstIDs)
		}
	}
}

// conformanceCase is frames sent on a new connection and what the server
// must answer.
type conformanceCase struct {
	name string
	// send drives the connection; it may read (awaitEnd) between writes.
	send func(a *attacker)
	// want checks the outcome read after send.
	want func(t *testing.T, o outcome)
}

func runConformance(t *testing.T, addr string, cases []conformanceCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := attack(t, addr)
			c.send(a)
			c.want(t, a.sync())
		})
	}
}

func expectGoAway(code http2.ErrCode) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) { t.Helper(); o.wantGoAway(t, code) }
}

func expectReset(id uint32, code http2.ErrCode) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) { t.Helper(); o.wantReset(t, id, code) }
}

func expectAccepted(t *testing.T, o outcome) { t.Helper(); o.wantAccepted(t) }

// TestConformanceStreamStates: RFC 9113 5.1, 6.1, 6.4. A frame other than
// HEADERS or PRIORITY on a stream the client never opened ends the
// connection with PROTOCOL_ERROR; DATA or HEADERS after the client ended
// or reset a stream resets it with STREAM_CLOSED; frames that crossed the
// server's own end of the stream or RST_STREAM, and WINDOW_UPDATE,
// PRIORITY and RST_STREAM on a stream the client half-closed, are taken
// without an error.
func TestConformanceStreamStates(t *testing.T) {
	addr, _ := attackServer(t, &stateEcho{})
	unary := func(a *attacker, id uint32) {
		a.send(headersFrame(id, false, a.block("Echo")), dataFrame(id, true, emptyMsg))
		a.awaitEnd(id)
	}
	runConformance(t, addr, []conformanceCase{
		{"idle: DATA", func(a *attacker) { a.send(dataFrame(1, true, emptyMsg)) }, expectGoAway(http2.ErrCodeProtocol)},
		{"idle: RST_STREAM", func(a *attacker) { a.send(rstFrame(1, http2.ErrCodeCancel)) }, expectGoAway(http2.ErrCodeProtocol)},
		{"idle: WINDOW_UPDATE", func(a *attacker) { a.send(windowUpdateFrame(1, 100)) }, expectGoAway(http2.ErrCodeProtocol)},
		{"idle: DATA above the last stream opened", func(a *attacker) {
			unary(a, 1)
			a.send(dataFrame(5, true, emptyMsg))
		}, expectGoAway(http2.ErrCodeProtocol)},
		{"idle: WINDOW_UPDATE on an even stream", func(a *attacker) { a.send(windowUpdateFrame(2, 100)) }, expectGoAway(http2.ErrCodeProtocol)},
		{"half-closed (remote): DATA", func(a *attacker) {
			a.send(headersFrame(1, true, a.block("EchoBidi")), dataFrame(1, true, emptyMsg))
		}, expectReset(1, http2.ErrCodeStreamClosed)},
		{"half-closed (remote): HEADERS", func(a *attacker) {
			a.send(headersFrame(1, true, a.block("EchoBidi")), headersFrame(1, true, a.fields("x-trailer", "1")))
		}, expectGoAway(http2.ErrCodeStreamClosed)},
		{"closed: HEADERS after the client's RST_STREAM", func(a *attacker) {
			a.send(headersFrame(1, false, a.block("EchoBidi")), rstFrame(1, http2.ErrCodeCancel), headersFrame(1, true, a.fields("x-trailer", "1")))
		}, expectGoAway(http2.ErrCodeStreamClosed)},
		{"closed: DATA after the client's RST_STREAM", func(a *attacker) {
			a.send(headersFrame(1, false, a.block("EchoBidi")), rstFrame(1, http2.ErrCodeCancel), dataFrame(1, true, emptyMsg))
		}, expectReset(1, http2.ErrCodeStreamClosed)},
		{"closed: DATA after the client's RST_STREAM, answered without reading it", func(a *attacker) {
			a.send(headersFrame(1, false, a.fields(":method", "GET", ":scheme", "http", ":path", "/", ":authority", "x")),
				rstFrame(1, http2.ErrCodeCancel), dataFrame(1, true, []byte("test")))
		}, expectReset(1, http2.ErrCodeStreamClosed)},
		{"closed: DATA after both ends ended", func(a *attacker) {
			unary(a, 1)
			a.send(dataFrame(1, true, emptyMsg))
		}, expectReset(1, http2.ErrCodeStreamClosed)},
		{"closed: HEADERS after both ends ended", func(a *attacker) {
			unary(a, 1)
			a.send(headersFrame(1, true, a.block("Echo")))
		}, expectGoAway(http2.ErrCodeStreamClosed)},
		// Legal: the frames the server must take.
		{"half-closed (remote): WINDOW_UPDATE, PRIORITY, RST_STREAM", func(a *attacker) {
			a.send(headersFrame(1, true, a.block("EchoBidi")), windowUpdateFrame(1, 100), priorityFrame(1, 0), rstFrame(1, http2.ErrCodeCancel))
		}, expectAccepted},
		{"closed: WINDOW_UPDATE and PRIORITY after both ends ended", func(a *attacker) {
			unary(a, 1)
			a.send(windowUpdateFrame(1, 100), priorityFrame(1, 0))
		}, expectAccepted},
		{"closed: DATA crossing the server's end of the stream", func(a *attacker) {
			// EchoClient answers before the client's END_STREAM: the
			// server's trailers and RST_STREAM NO_ERROR cross the client's
			// last DATA on the wire.
			a.send(headersFrame(1, false, a.block("EchoClient")))
			a.awaitEnd(1)
			a.send(dataFrame(1, false, emptyMsg), windowUpdateFrame(1, 100), dataFrame(1, true, nil))
		}, expectAccepted},
		{"idle: PRIORITY, then the stream opens", func(a *attacker) {
			a.send(priorityFrame(3, 0))
			unary(a, 3)
		}, expectAccepted},
	})
}

// TestConformanceRefusedStreamData: DATA on a stream the server refused
// past MAX_CONCURRENT_STREAMS crossed the refusal: it is dropped, with no
// reset and no GOAWAY (RFC 9113 5.1, "closed").
func TestConformanceRefusedStreamData(t *testing.T) {
	addr, _ := attackServer(t, &stateEcho{}, triple.WithMaxConcurrentStreams(1))
	a := attack(t, addr)
	a.send(headersFrame(1, false, a.block("EchoBidi")), headersFrame(3, false, a.block("EchoBidi")), dataFrame(3, false, emptyMsg), dataFrame(3, true, emptyMsg))
	o := a.sync()
	o.wantAccepted(t)
	if o.rst[http2.ErrCodeRefusedStream] != 1 {
		t.Errorf("resets %v on streams %v, want REFUSED_STREAM on stream 3", o.rst, o.rstIDs)
	}
}

// TestConformancePriority: RFC 9113 5.3.1. A stream that depends on itself,
// in HEADERS or PRIORITY, is reset with PROTOCOL_ERROR.
func TestConformancePriority(t *testing.T) {
	addr, _ := attackServer(t, &stateEcho{})
	withPriority := func(id, dep uint32, block []byte) []byte {
		p := append(binary.BigEndian.AppendUint32(nil, dep), 255)
		return frame(nil, http2.FrameHeaders, http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream|http2.FlagHeadersPriority, id, append(p, block...))
	}
	runConformance(t, addr, []conformanceCase{
		{"HEADERS depending on itself", func(a *attacker) { a.send(withPriority(1, 1, a.block("Echo"))) }, expectReset(1, http2.ErrCodeProtocol)},
		{"PRIORITY depending on itself", func(a *attacker) { a.send(priorityFrame(1, 1)) }, expectReset(1, http2.ErrCodeProtocol)},
		{"PRIORITY depending on itself, open stream", func(a *attacker) {
			a.send(headersFrame(1, true, a.block("EchoBidi")), priorityFrame(1, 1))
		}, expectReset(1, http2.ErrCodeProtocol)},
		{"HEADERS depending on another stream", func(a *attacker) {
			a.send(withPriority(1, 0, a.block("EchoBidi")))
		}, expectAccepted},
	})
}

// TestConformanceMalformedRequests: RFC 9113 8.1.1, 8.2, 8.3. A malformed
// request is reset with PROTOCOL_ERROR and the connection carries on.
func TestConformanceMalformedRequests(t *testing.T) {
	addr, _ := attackServer(t, &stateEcho{})
	path := echoSvc + "Echo"
	base := []string{":method", "POST", ":scheme", "http", ":path", path, ":authority", "x"}
	grpc := []string{"content-type", "application/grpc", "te", "trailers"}
	request := func(kv ...string) func(a *attacker) {
		return func(a *attacker) { a.send(headersFrame(1, false, a.fields(kv...)), dataFrame(1, true, emptyMsg)) }
	}
	with := func(extra ...string) func(a *attacker) { return request(slices.Concat(base, grpc, extra)...) }
	malformed := expectReset(1, http2.ErrCodeProtocol)
	runConformance(t, addr, []conformanceCase{
		{"upper case in a field name", with("X-Test", "ok"), malformed},
		{"space in a field name", with("x test", "ok"), malformed},
		{"colon in a field name", with("x:test", "ok"), malformed},
		{"LF in a field value", with("x-test", "a\nb"), malformed},
		{"NUL in a field value", with("x-test", "a\x00b"), malformed},
		{"unknown pseudo-header", request(slices.Concat(base, []string{":test", "ok"}, grpc)...), malformed},
		{"response pseudo-header", request(slices.Concat(base, []string{":status", "200"}, grpc)...), malformed},
		{"pseudo-header after a regular field", request(slices.Concat(base, grpc, []string{":authority", "y"})...), malformed},
		{"connection-specific field", with("connection", "keep-alive"), malformed},
		{"transfer-encoding", with("transfer-encoding", "chunked"), malformed},
		{"te other than trailers", request(slices.Concat(base, []string{"content-type", "application/grpc", "te", "trailers, deflate"})...), malformed},
		{"empty :path", request(":method", "POST", ":scheme", "http", ":path", "", ":authority", "x"), malformed},
		{"no :method", request(":scheme", "http", ":path", path, ":authority", "x"), malformed},
		{"no :scheme", request(":method", "POST", ":path", path, ":authority", "x"), malformed},
		{"no :path", request(":method", "POST", ":scheme", "http", ":authority", "x"), malformed},
		{"duplicated :method", request(slices.Concat([]string{":method", "POST"}, base)...), malformed},
		{"duplicated :scheme", request(slices.Concat(base, []string{":scheme", "http"})...), malformed},
		{"duplicated :path", request(slices.Concat(base, []string{":path", path})...), malformed},
		{"CONNECT with :path", request(":method", "CONNECT", ":authority", "x:1", ":path", "/"), malformed},
		{"content-length above the DATA", with("content-length", "6"), malformed},
		{"content-length below the DATA", with("content-length", "1"), malformed},
		{"content-length not a number", with("content-length", "five"), malformed},
		{"content-length twice", with("content-length", "5", "content-length", "5"), malformed},
		{"content-length below the sum of DATA frames", func(a *attacker) {
			a.send(headersFrame(1, false, a.fields(slices.Concat(base, grpc, []string{"content-length", "5"})...)), dataFrame(1, false, emptyMsg), dataFrame(1, true, emptyMsg))
		}, malformed},
		{"content-length below the sum of DATA frames, answered without reading them", func(a *attacker) {
			// No content type: the server's answer (415) needs no body, but
			// the request is checked whole before the handler runs.
			a.send(headersFrame(1, false, a.fields(":method", "POST", ":scheme", "http", ":path", "/", ":authority", "x", "content-length", "1")),
				dataFrame(1, false, []byte("test")), dataFrame(1, true, []byte("test")))
		}, malformed},
		{"content-length and no DATA", func(a *attacker) {
			a.send(headersFrame(1, true, a.fields(slices.Concat(base, grpc, []string{"content-length", "5"})...)))
		}, malformed},
		{"pseudo-header in trailers", func(a *attacker) {
			a.send(headersFrame(1, false, a.block("EchoBidi")), dataFrame(1, false, emptyMsg), headersFrame(1, true, a.fields(":method", "POST")))
		}, malformed},
		{"trailers without END_STREAM", func(a *attacker) {
			a.send(headersFrame(1, false, a.block("EchoBidi")), headersFrame(1, false, a.fields("x-trailer", "1")))
		}, malformed},
		// Well-formed: served.
		{"content-length equal to the DATA", with("content-length", "5"), expectAccepted},
		{"trailing space in a value, as grpc-go sends it", with("x-test", "ok "), expectAccepted},
		{"trailers", func(a *attacker) {
			a.send(headersFrame(1, false, a.fields(slices.Concat(base, grpc)...)), dataFrame(1, false, emptyMsg), headersFrame(1, true, a.fields("x-trailer", "1")))
			a.awaitEnd(1)
		}, expectAccepted},
	})
}

// TestConformanceMalformedFlood: a client that sends nothing but malformed
// requests spends the budget of streams it may open and not let the
// server serve (2 x MAX_CONCURRENT_STREAMS), then gets GOAWAY
// ENHANCE_YOUR_CALM. One request at a time: the stream limit itself is
// never reached.
func TestConformanceMalformedFlood(t *testing.T) {
	const limit = 4
	addr, _ := attackServer(t, &stateEcho{}, triple.WithMaxConcurrentStreams(limit))
	a := attack(t, addr)
	for i := range 4 * limit {
		id := uint32(2*i + 1)
		a.send(headersFrame(id, true, a.fields(":method", "POST", ":path", "/x", ":authority", "x"))) // no :scheme
		o := a.sync()
		if o.goAway {
			o.wantGoAway(t, http2.ErrCodeEnhanceYourCalm)
			if i != 2*limit {
				t.Errorf("GOAWAY at malformed request %d, want it at %d", i+1, 2*limit+1)
			}
			return
		}
		o.wantReset(t, id, http2.ErrCodeProtocol)
	}
	t.Errorf("%d malformed requests and no GOAWAY", 4*limit)
}

// TestConformancePreface: RFC 9113 3.4. Bytes that are neither the HTTP/2
// preface nor an HTTP/1 request line close the connection without an
// answer; an HTTP/1.1 request on the same port still gets one.
func TestConformancePreface(t *testing.T) {
	addr, _ := attackServer(t, nil)
	// exchange sends send, then ends its side when cut, and reads all the
	// server answers until it closes.
	exchange := func(send string, cut bool) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
		if cut {
			_ = c.(*net.TCPConn).CloseWrite()
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%q: reading the answer: %v", send, err)
		}
		return string(got)
	}
	for _, bad := range []string{
		"INVALID CONNECTION PREFACE\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
		"\x16\x03\x01\x00\x05hello\n",
	} {
		if got := exchange(bad, false); got != "" {
			t.Errorf("%q: the server answered %q, want the connection closed without an answer", bad, got)
		}
	}
	// A first line the peer cuts short is closed without an answer too.
	if got := exchange("GET /no.Such/Meth", true); got != "" {
		t.Errorf("a cut request line: the server answered %q, want the connection closed without an answer", got)
	}
	got := exchange("GET /no.Such/Method HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false)
	if !strings.HasPrefix(got, "HTTP/1.1 ") {
		t.Errorf("an HTTP/1.1 request got %q, want an HTTP/1.1 answer", got)
	}
}

// TestConformanceJSONOverH2: a request that is not gRPC (JSON over
// cleartext HTTP/2) reaches its handler once complete; a body larger than
// the server holds back (64 KiB) starts the handler early, which reads the
// rest as it comes.
func TestConformanceJSONOverH2(t *testing.T) {
	addr := startServer(t, nil, nil)
	hc := &http.Client{Transport: h2cTransport(), Timeout: 10 * time.Second}
	for _, n := range []int{10, 200 << 10} {
		text := strings.Repeat("j", n)
		body := `{"text":"` + text + `"}`
		for _, known := range []bool{true, false} { // with and without content-length
			var r io.Reader = strings.NewReader(body)
			if !known {
				r = io.MultiReader(r)
			}
			req, err := http.NewRequest(http.MethodPost, "http://"+addr+echoSvc+"Echo", r)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || !strings.Contains(string(got), text) {
				t.Errorf("%d bytes (content-length known: %v): HTTP/%d %d, %d bytes back", len(body), known, resp.ProtoMajor, resp.StatusCode, len(got))
			}
		}
	}
}
