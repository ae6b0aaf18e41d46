package triple_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// Tests of the HTTP/2 transport itself: flow control, many streams, resets,
// GOAWAY and what a stranger can send.

func TestH2FlowControlLargeMessagesBothWays(t *testing.T) {
	addr := startServer(t, nil, nil)
	client := testpbtriple.NewEchoServiceClient(dial(t, addr))
	// Messages larger than the stream window, several streams at once, so
	// that both sides wait for WINDOW_UPDATEs and share the connection window.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 3 {
		wg.Go(func() {
			big := bytes.Repeat([]byte{byte(i)}, 5<<20)
			st, err := client.EchoBidi(ctx)
			if err != nil {
				errs <- err
				return
			}
			for range 2 {
				if err := st.Send(&testpb.EchoRequest{Payload: big}); err != nil {
					errs <- err
					return
				}
				resp, err := st.Recv()
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(resp.GetPayload(), big) {
					errs <- fmt.Errorf("stream %d: payload corrupted", i)
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

func TestH2GRPCGoSmallWindows(t *testing.T) {
	// grpc-go starts with 64 KiB windows: a 5 MiB answer must wait for its
	// WINDOW_UPDATEs; a 5 MiB request must respect ours.
	conn := grpcConn(t, startServer(t, nil, nil))
	big := bytes.Repeat([]byte("x"), 5<<20)
	resp := new(testpb.EchoResponse)
	if err := conn.Invoke(ctxT(t), echoSvc+"Echo", &testpb.EchoRequest{Payload: big}, resp, grpc.MaxCallRecvMsgSize(16<<20)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.GetPayload(), big) {
		t.Fatal("payload corrupted")
	}
}

func TestH2ManyConcurrentCalls(t *testing.T) {
	client := testpbtriple.NewEchoServiceClient(dial(t, startServer(t, nil, nil)))
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	for i := range 500 {
		wg.Go(func() {
			text := fmt.Sprint(i)
			resp, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: text, Payload: make([]byte, i*37)})
			if err != nil {
				errs <- err
				return
			}
			if resp.GetText() != text || len(resp.GetPayload()) != i*37 {
				errs <- fmt.Errorf("call %d: wrong answer", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// blockEcho holds streaming calls until their context ends.
type blockEcho struct {
	echo
	started chan struct{}
	ended   chan error
}

func (b *blockEcho) EchoBidi(s triple.BidiStreamServer[testpb.EchoRequest, testpb.EchoResponse]) error {
	b.started <- struct{}{}
	<-s.Context().Done()
	b.ended <- s.Context().Err()
	return s.Context().Err()
}

func TestH2CancelResetsServerStream(t *testing.T) {
	be := &blockEcho{started: make(chan struct{}, 1), ended: make(chan error, 1)}
	addr := startServer(t, nil, func(s *triple.Server) {
		_ = testpbtriple.RegisterEchoServiceHandler(s, be)
	})
	client := testpbtriple.NewEchoServiceClient(dial(t, addr))
	ctx, cancel := context.WithCancel(context.Background())
	st, err := client.EchoBidi(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&testpb.EchoRequest{})
	<-be.started
	cancel()
	select {
	case err := <-be.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("server context: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server never saw the RST_STREAM")
	}
	if _, err := st.Recv(); triple.CodeOf(err) != triple.CodeCanceled {
		t.Fatalf("Recv after cancel: %v", err)
	}
	// The connection still serves.
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "again"}); err != nil {
		t.Fatal(err)
	}
}

// rawConn is a hand-driven HTTP/2 client connection.
type rawConn struct {
	t   *testing.T
	nc  net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	rc := &rawConn{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	rc.fr.AllowIllegalWrites = true
	rc.enc = hpack.NewEncoder(&rc.buf)
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := nc.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return rc
}

func (rc *rawConn) headers(id uint32, end bool, kv ...string) {
	rc.buf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = rc.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.buf.Bytes(), EndStream: end, EndHeaders: true}); err != nil {
		rc.t.Fatal(err)
	}
}

func grpcHeaders(method string) []string {
	return []string{":method", "POST", ":scheme", "http", ":path", echoSvc + method, ":authority", "x", "content-type", "application/grpc", "te", "trailers"}
}

// until reads frames until match says stop; it fails on EOF.
func (rc *rawConn) until(match func(http2.Frame) bool) {
	rc.t.Helper()
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("reading frames: %v", err)
		}
		if match(f) {
			return
		}
	}
}

// goAwayCode reads until GOAWAY and returns its code and whether the
// connection was closed after it.
func (rc *rawConn) goAway() http2.ErrCode {
	rc.t.Helper()
	var code http2.ErrCode
	rc.until(func(f http2.Frame) bool {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			code = g.ErrCode
			return true
		}
		return false
	})
	return code
}

func TestH2MalformedFramesGetGoAway(t *testing.T) {
	addr := startServer(t, nil, nil)
	tests := []struct {
		name string
		send func(rc *rawConn)
		want http2.ErrCode
	}{
		{"data on stream 0", func(rc *rawConn) { _ = rc.fr.WriteData(0, false, []byte("x")) }, http2.ErrCodeProtocol},
		{"even stream id", func(rc *rawConn) { rc.headers(2, true, grpcHeaders("Echo")...) }, http2.ErrCodeProtocol},
		{"bad hpack", func(rc *rawConn) {
			_ = rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff}, EndHeaders: true})
		}, http2.ErrCodeCompression},
		{"window overflow", func(rc *rawConn) { _ = rc.fr.WriteWindowUpdate(0, 1<<31-1) }, http2.ErrCodeFlowControl},
		{"stream ids going back", func(rc *rawConn) {
			rc.headers(5, false, grpcHeaders("EchoBidi")...)
			rc.headers(3, false, grpcHeaders("EchoBidi")...)
		}, http2.ErrCodeProtocol},
		{"continuation out of place", func(rc *rawConn) { _ = rc.fr.WriteContinuation(1, true, []byte{0x82}) }, http2.ErrCodeProtocol},
		{"oversized frame", func(rc *rawConn) { _ = rc.fr.WriteData(1, false, make([]byte, 20<<10)) }, http2.ErrCodeFrameSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := dialRaw(t, addr)
			tt.send(rc)
			if got := rc.goAway(); got != tt.want {
				t.Fatalf("GOAWAY %v, want %v", got, tt.want)
			}
		})
	}
	client := testpbtriple.NewEchoServiceClient(dial(t, addr))
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "still here"}); err != nil {
		t.Fatal(err)
	}
}

func TestH2RawUnaryAndTrailersOnly(t *testing.T) {
	rc := dialRaw(t, startServer(t, nil, nil))
	// An unknown method answers trailers-only: one HEADERS with END_STREAM.
	rc.headers(1, true, ":method", "POST", ":scheme", "http", ":path", "/no.Such/Thing", ":authority", "x", "content-type", "application/grpc")
	rc.until(func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		if !ok || h.StreamID != 1 {
			return false
		}
		if !h.StreamEnded() || h.PseudoValue("status") != "200" || fieldValue(h, "grpc-status") != "12" {
			t.Fatalf("trailers-only answer: end=%v %v", h.StreamEnded(), h.Fields)
		}
		return true
	})
	// A unary call in three DATA frames, the prefix split across two.
	rc.headers(3, false, grpcHeaders("Echo")...)
	msg := []byte{0, 0, 0, 0, 4, 0x0a, 0x02, 'h', 'i'}
	_ = rc.fr.WriteData(3, false, msg[:2])
	_ = rc.fr.WriteData(3, false, msg[2:6])
	_ = rc.fr.WriteData(3, true, msg[6:])
	var got []byte
	rc.until(func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.DataFrame:
			got = append(got, f.Data()...)
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				if fieldValue(f, "grpc-status") != "0" {
					t.Fatalf("trailers %v", f.Fields)
				}
				return true
			}
		}
		return false
	})
	if !bytes.Contains(got, []byte("hi")) {
		t.Fatalf("response %q", got)
	}
	// PING is answered.
	_ = rc.fr.WritePing(false, [8]byte{1, 2, 3})
	rc.until(func(f http2.Frame) bool {
		p, ok := f.(*http2.PingFrame)
		return ok && p.IsAck() && p.Data == [8]byte{1, 2, 3}
	})
}

func fieldValue(h *http2.MetaHeadersFrame, name string) string {
	for _, f := range h.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func TestH2ShutdownSendsGoAwayAndDrains(t *testing.T) {
	s := triple.NewServer()
	_ = testpbtriple.RegisterEchoServiceHandler(s, &echo{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	rc := dialRaw(t, lis.Addr().String())
	rc.headers(1, false, grpcHeaders("EchoBidi")...)
	rc.until(func(f http2.Frame) bool { _, ok := f.(*http2.SettingsFrame); return ok })
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	// The first GOAWAY admits everything; the second names stream 1.
	var last []uint32
	rc.until(func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			last = append(last, f.LastStreamID)
			return len(last) == 2
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = rc.fr.WritePing(true, f.Data)
			}
		}
		return false
	})
	if last[0] != 1<<31-1 || last[1] != 1 {
		t.Fatalf("GOAWAY last stream ids %v, want [2147483647 1]", last)
	}
	// Stream 1 still works and ends the connection when it ends.
	_ = rc.fr.WriteData(1, true, []byte{0, 0, 0, 0, 0})
	rc.until(func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		return ok && h.StreamEnded()
	})
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestH2ServerRefusesOversizedHeaders(t *testing.T) {
	rc := dialRaw(t, startServer(t, nil, nil))
	// Each field within the string limit, the list over 1 MiB: the stream
	// fails, the connection stays.
	half := string(bytes.Repeat([]byte("a"), 600<<10))
	kv := append(grpcHeaders("Echo"), "x-big-1", half, "x-big-2", half)
	rc.buf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = rc.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	block := rc.buf.Bytes()
	_ = rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:16<<10], EndStream: true})
	for block = block[16<<10:]; len(block) > 0; {
		n := min(len(block), 16<<10)
		_ = rc.fr.WriteContinuation(1, n == len(block), block[:n])
		block = block[n:]
	}
	rc.until(func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		if ok && h.StreamEnded() {
			if fieldValue(h, "grpc-status") != "8" {
				t.Fatalf("status %v", fieldValue(h, "grpc-status"))
			}
			return true
		}
		return false
	})
}
