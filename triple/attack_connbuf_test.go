package triple_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
)

// Attacks on what one connection makes the server buffer: partial
// messages and whole messages nobody reads, on many streams at once.

// connBuf is the server's default per-connection receive buffer.
const connBuf = triple.DefaultMaxConnectionBuffer

// flowAttacker is an attacker that keeps to HTTP/2 flow control: it sends
// DATA only within the connection window the server grants, read by a
// goroutine that also records how the server ends each stream.
type flowAttacker struct {
	*attacker
	mu     sync.Mutex
	cond   *sync.Cond
	win    int64 // connection send window
	synced int   // sync PING ACKs read
	status map[uint32]string
	rst    map[uint32]http2.ErrCode
	goAway string
	ended  error
	done   chan struct{}
}

func flowAttack(t *testing.T, addr string) *flowAttacker {
	t.Helper()
	f := &flowAttacker{attacker: attack(t, addr), win: 65535, status: map[uint32]string{}, rst: map[uint32]http2.ErrCode{}, done: make(chan struct{})}
	f.cond = sync.NewCond(&f.mu)
	f.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	_ = f.nc.SetReadDeadline(time.Now().Add(2 * time.Minute))
	go f.readLoop()
	t.Cleanup(func() {
		_ = f.nc.Close()
		<-f.done
	})
	return f
}

func (f *flowAttacker) readLoop() {
	defer close(f.done)
	for {
		fr, err := f.fr.ReadFrame()
		f.mu.Lock()
		switch fr := fr.(type) {
		case *http2.WindowUpdateFrame:
			if fr.StreamID == 0 {
				f.win += int64(fr.Increment)
			}
		case *http2.MetaHeadersFrame:
			if st := headerValues(fr, "grpc-status"); len(st) > 0 {
				f.status[fr.StreamID] = st[0] + " " + strings.Join(headerValues(fr, "grpc-message"), "")
			}
		case *http2.RSTStreamFrame:
			f.rst[fr.StreamID] = fr.ErrCode
		case *http2.PingFrame:
			if fr.IsAck() && fr.Data == syncPing {
				f.synced++
			}
		case *http2.GoAwayFrame:
			f.goAway = fmt.Sprintf("%v %q", fr.ErrCode, fr.DebugData())
		}
		if err != nil {
			f.ended = err
		}
		f.cond.Broadcast()
		f.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func headerValues(fr *http2.MetaHeadersFrame, name string) []string {
	var v []string
	for _, hf := range fr.Fields {
		if hf.Name == name {
			v = append(v, hf.Value)
		}
	}
	return v
}

// sync sends a PING and waits for its ACK: the server has then read
// everything sent before, and what it queued in answer came before.
func (f *flowAttacker) sync() bool {
	f.mu.Lock()
	n := f.synced
	f.mu.Unlock()
	if _, err := f.nc.Write(frame(nil, http2.FramePing, 0, 0, syncPing[:])); err != nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.synced == n && f.ended == nil {
		f.cond.Wait()
	}
	return f.synced > n
}

// take waits for up to max bytes of connection window. It returns 0 when
// the server, having read everything sent, grants no more: the attacker
// is stalled by flow control.
func (f *flowAttacker) take(most int) int {
	for tried := false; ; tried = true {
		f.mu.Lock()
		if f.win > 0 {
			n := min(int64(most), f.win)
			f.win -= n
			f.mu.Unlock()
			return int(n)
		}
		f.mu.Unlock()
		if tried || !f.sync() {
			return 0
		}
	}
}

// send opens a stream to method and sends body on it in 16 KiB DATA
// frames within the connection window, without END_STREAM; it reports
// whether all of body went out.
func (f *flowAttacker) send(id uint32, method string, body []byte) bool {
	if _, err := f.nc.Write(frame(nil, http2.FrameHeaders, http2.FlagHeadersEndHeaders, id, f.block(method))); err != nil {
		return false
	}
	return f.sendData(id, body)
}

// sendData sends body on stream id as send does.
func (f *flowAttacker) sendData(id uint32, body []byte) bool {
	var b []byte
	for off := 0; off < len(body); {
		n := f.take(min(16<<10, len(body)-off))
		if n == 0 {
			return false
		}
		b = frame(b[:0], http2.FrameData, 0, id, body[off:off+n])
		if _, err := f.nc.Write(b); err != nil {
			return false
		}
		off += n
	}
	return true
}

// results counts the streams ended with grpc-status code, by message.
func (f *flowAttacker) results(code string) (n int, msgs map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msgs = map[string]int{}
	for _, s := range f.status {
		if c, m, _ := strings.Cut(s, " "); c == code {
			n++
			msgs[m]++
		}
	}
	return n, msgs
}

// TestAttackConnectionBuffer: one connection opens many unary streams and
// sends on each a length prefix announcing 8 MiB, then the 4 MiB of its
// stream window, never finishing. The server holds at most its
// per-connection receive buffer of such partial messages: past it, it
// withholds connection window and fails the largest partial message with
// RESOURCE_EXHAUSTED (trailers, then RST_STREAM) to make room, so the heap
// stays within the buffer.
func TestAttackConnectionBuffer(t *testing.T) {
	logged := &failLog{}
	addr, _ := attackServer(t, nil, triple.WithLogger(slog.New(logged)))
	g := startGuardLive(t, addr, connBuf+attackHeapBound, true)
	a := flowAttack(t, addr)
	window := int(a.settings[http2.SettingInitialWindowSize])
	body := make([]byte, window)
	body[0], body[1], body[2], body[3], body[4] = 0, 0, 0x80, 0, 0 // 8 MiB announced
	const streams = 256
	sent := 0
	for i := range streams {
		if !a.send(uint32(2*i+1), "Echo", body) {
			break
		}
		sent++
	}
	a.sync()
	failed, msgs := a.results("8")
	a.mu.Lock()
	goAway := a.goAway
	a.mu.Unlock()
	_ = a.nc.Close()
	t.Logf("the attacker sent %d streams of %d KiB (%d MiB); %d failed with RESOURCE_EXHAUSTED: %v", sent, window>>10, sent*window>>20, failed, msgs)
	if goAway != "" {
		t.Errorf("GOAWAY %s: a peer within flow control keeps its connection", goAway)
	}
	// What the server still holds, the streams it did not fail, fits the
	// buffer (the last stream may be partly sent).
	if held := (sent - failed - 1) * window; held > connBuf {
		t.Errorf("%d of %d full streams were not failed: %d MiB held, buffer %d MiB", sent-failed, sent, held>>20, connBuf>>20)
	}
	for m := range msgs {
		if !strings.Contains(m, "receive buffer") {
			t.Errorf("RESOURCE_EXHAUSTED message %q does not name the connection's receive buffer", m)
		}
	}
	// Warn at the 1st, 2nd, 4th... failure, with the count and the
	// client's address (the last trailers may still be on their way: the
	// server may have failed more streams than the attacker read).
	warns, last := logged.get()
	if warns == 0 || last != int64(1)<<(warns-1) || warns < bits.Len(uint(failed)) {
		t.Errorf("%d Warn records, the last counting %d failures (-1: no client address), for %d failures seen; want one at each power of two", warns, last, failed)
	}
	g.finish(40)
}

// failLog counts the server's Warn records about failed streams, checking
// that each names the client's address.
type failLog struct {
	mu    sync.Mutex
	warns int
	last  int64 // the failures attribute of the last one
}

func (h *failLog) get() (int, int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.warns, h.last
}

func (h *failLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *failLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || !strings.Contains(r.Message, "receive buffer") {
		return nil
	}
	remote := false
	h.mu.Lock()
	defer h.mu.Unlock()
	h.warns++
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "remote":
			remote = strings.HasPrefix(a.Value.String(), "127.0.0.1:")
		case "failures":
			h.last = a.Value.Int64()
		}
		return true
	})
	if !remote {
		h.last = -1
	}
	return nil
}

func (h *failLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *failLog) WithGroup(string) slog.Handler      { return h }

// unreadServer serves streams whose handlers never read (until
// he.release is closed), guarded with a bound of the buffer on live heap
// growth.
func unreadServer(t *testing.T) (he *hangEcho, addr string, g *guard) {
	t.Helper()
	he = &hangEcho{release: make(chan struct{})}
	addr, _ = attackServer(t, he)
	return he, addr, startGuardLive(t, addr, connBuf+attackHeapBound, true)
}

// wholeMsg is a 16 KiB DATA payload that is one whole message.
func wholeMsg() []byte {
	msg := make([]byte, 16<<10)
	binary.BigEndian.PutUint32(msg[1:], uint32(len(msg)-5))
	return msg
}

// TestAttackConnectionBufferUnread: whole messages sent on many streams
// whose handlers never read them. Each stream takes its 4 MiB window; the
// connection stalls once its streams hold the receive buffer (no stream
// fails: these messages are whole, waiting for their handlers), and the
// window comes back as the streams end.
func TestAttackConnectionBufferUnread(t *testing.T) {
	he, addr, g := unreadServer(t)
	a := flowAttack(t, addr)
	window := int(a.settings[http2.SettingInitialWindowSize])
	msg := wholeMsg()
	body := bytes.Repeat(msg, window/len(msg))
	const streams = 100
	sent, stalled := 0, false
	for i := range streams {
		if !a.send(uint32(2*i+1), "EchoBidi", body) {
			stalled = true
			break
		}
		sent++
	}
	a.sync()
	a.mu.Lock()
	win, resets, goAway, statuses := a.win, len(a.rst), a.goAway, len(a.status)
	a.mu.Unlock()
	t.Logf("the attacker sent %d streams of %d KiB (%d MiB) before it stalled: %v", sent, window>>10, sent*window>>20, stalled)
	if !stalled || win != 0 {
		t.Errorf("the attacker was not stalled (window %d): %d MiB of unread messages accepted", win, sent*window>>20)
	}
	if sent*window > connBuf {
		t.Errorf("%d MiB of unread messages accepted, buffer %d MiB", sent*window>>20, connBuf>>20)
	}
	if resets+statuses > 0 || goAway != "" {
		t.Errorf("streams ended (%d resets, %d statuses, GOAWAY %q): whole messages waiting for their handlers should stall the connection, not fail it", resets, statuses, goAway)
	}
	// The handlers return: their streams end, and the window they held
	// comes back.
	close(he.release)
	back := false
	for range 200 {
		if a.sync() && a.take(1) == 1 {
			back = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !back {
		t.Error("no connection window came back after the streams ended")
	}
	_ = a.nc.Close()
	g.finish(streams + 10)
}

// TestConnectionBufferGRPCGo: a grpc-go client sending many large messages
// at once on one connection. With the default buffer all of them
// complete; with a small one some fail with RESOURCE_EXHAUSTED and the
// others complete, none hangs.
func TestConnectionBufferGRPCGo(t *testing.T) {
	call := func(t *testing.T, conn *grpc.ClientConn, n, size int) (ok, exhausted int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		errs := make(chan error, n)
		for range n {
			go func() {
				resp := new(testpb.EchoResponse)
				err := conn.Invoke(ctx, echoSvc+"Echo", &testpb.EchoRequest{Payload: make([]byte, size)}, resp,
					grpc.MaxCallRecvMsgSize(16<<20))
				if err == nil && len(resp.GetPayload()) != size {
					err = fmt.Errorf("echoed %d bytes, sent %d", len(resp.GetPayload()), size)
				}
				errs <- err
			}()
		}
		for range n {
			err := <-errs
			switch {
			case err == nil:
				ok++
			case status.Code(err) == codes.ResourceExhausted && strings.Contains(err.Error(), "receive buffer"):
				exhausted++
			default:
				t.Errorf("call failed: %v", err)
			}
		}
		return ok, exhausted
	}
	t.Run("default buffer", func(t *testing.T) {
		conn := grpcConn(t, startServer(t, nil, nil))
		for _, c := range []struct{ n, size int }{{64, 1 << 20}, {16, 7 << 20}} {
			ok, exhausted := call(t, conn, c.n, c.size)
			t.Logf("%d calls of %d KiB: %d ok, %d RESOURCE_EXHAUSTED", c.n, c.size>>10, ok, exhausted)
			if ok != c.n {
				t.Errorf("%d calls of %d KiB: %d ok, %d RESOURCE_EXHAUSTED; want all ok", c.n, c.size>>10, ok, exhausted)
			}
		}
	})
	t.Run("small buffer", func(t *testing.T) {
		quiet := slog.New(slog.DiscardHandler) // one Warn per failed call
		conn := grpcConn(t, startServer(t, []triple.ServerOption{triple.WithMaxConnectionBuffer(16 << 20), triple.WithLogger(quiet)}, nil))
		ok, exhausted := call(t, conn, 16, 7<<20)
		t.Logf("16 calls of 7 MiB, 16 MiB buffer: %d ok, %d RESOURCE_EXHAUSTED", ok, exhausted)
		if ok == 0 {
			t.Error("no call completed")
		}
		// The connection is still good.
		if ok, _ := call(t, conn, 1, 7<<20); ok != 1 {
			t.Error("a lone call after the others failed")
		}
	})
}

// gateEcho's EchoBidi reads nothing until open is closed, then reads
// everything, signalling took after the first message.
type gateEcho struct {
	echo
	open, took chan struct{}
}

func (g *gateEcho) EchoBidi(s triple.BidiStreamServer[testpb.EchoRequest, testpb.EchoResponse]) error {
	<-g.open
	_, err := s.Recv()
	close(g.took)
	for err == nil {
		_, err = s.Recv()
	}
	return nil
}

// TestConnectionBufferTakeUnsticks: partial messages fill the buffer
// behind one small whole message that waits for its handler, and the
// client has no window left: nothing fails while the message waits. When
// the handler takes it, the bytes it frees go back to the client even if
// less than a frame, so that the client's next DATA lets the server fail
// a partial message and the connection goes on.
func TestConnectionBufferTakeUnsticks(t *testing.T) {
	gate := &gateEcho{open: make(chan struct{}), took: make(chan struct{})}
	addr, _ := attackServer(t, gate, triple.WithMaxRecvMessageSize(1<<20), triple.WithMaxConnectionBuffer(2<<20))
	a := flowAttack(t, addr)
	msg := make([]byte, 1024)
	binary.BigEndian.PutUint32(msg[1:], uint32(len(msg)-5))
	if !a.send(1, "EchoBidi", msg) {
		t.Fatal("the first message did not go out")
	}
	// Partial 1 MiB messages, 256 KiB of each, until the window is gone
	// (the buffer is 2 MiB: at most 9 streams).
	body := make([]byte, 256<<10)
	binary.BigEndian.PutUint32(body[1:], 1<<20)
	last := uint32(3)
	for last < 3+2*16 && a.send(last, "Echo", body) {
		last += 2
	}
	if n, _ := a.results("8"); n != 0 || a.take(1) != 0 {
		t.Fatalf("before the handler reads: %d streams failed, want the client stalled and none failed", n)
	}
	close(gate.open)
	<-gate.took
	if !a.sync() || a.take(1) != 1 {
		t.Fatal("no window came back when the handler took its message")
	}
	// The client goes on with its last stream; the server fails a partial
	// message to make room, and grants window again.
	a.sendData(last, make([]byte, 64<<10))
	var failed int
	for range 200 {
		if failed, _ = a.results("8"); failed > 0 {
			break
		}
		a.sync()
		time.Sleep(5 * time.Millisecond)
	}
	if failed == 0 {
		t.Fatal("no partial message failed after the client's window came back")
	}
	if !a.sync() || a.take(16<<10) == 0 {
		t.Error("no window after a partial message failed")
	}
}

// TestAttackConnectionWindow: the unread whole messages of
// TestAttackConnectionBufferUnread, sent without waiting for window. Once
// the streams hold the buffer the server returns no connection window,
// and DATA past it ends the connection with GOAWAY FLOW_CONTROL_ERROR.
func TestAttackConnectionWindow(t *testing.T) {
	he, addr, g := unreadServer(t)
	a := attack(t, addr)
	window := int(a.settings[http2.SettingInitialWindowSize])
	msg := wholeMsg()
	const streams = 100 // 400 MiB, within the stream windows
	read := make(chan outcome, 1)
	go func() { read <- a.read() }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b []byte
		for i := range streams {
			id := uint32(2*i + 1)
			b = frame(b[:0], http2.FrameHeaders, http2.FlagHeadersEndHeaders, id, a.block("EchoBidi"))
			for range window / len(msg) {
				b = frame(b, http2.FrameData, 0, id, msg)
			}
			if _, err := a.nc.Write(b); err != nil {
				return
			}
		}
		a.sendSyncPing()
	}()
	o := <-read
	_ = a.nc.Close()
	<-done
	o.wantGoAway(t, http2.ErrCodeFlowControl)
	close(he.release)
	g.finish(streams + 10)
}

// TestAttackConnectionBufferPrefixes: 1,000 unary streams, each an 8 MiB
// length prefix and one byte of the message. Buffers follow the data: the
// server holds about what arrived (the old reader allocated 1 MiB per
// prefix), and no stream fails, since the buffer is far from full.
func TestAttackConnectionBufferPrefixes(t *testing.T) {
	addr, _ := attackServer(t, nil)
	g := startGuardLive(t, addr, attackHeapBound, true)
	a := flowAttack(t, addr)
	streams := int(a.settings[http2.SettingMaxConcurrentStreams])
	body := []byte{0, 0, 0x80, 0, 0, 1} // 8 MiB announced, 1 byte sent
	for i := range streams {
		if !a.send(uint32(2*i+1), "Echo", body) {
			t.Fatalf("stream %d: no window for 6 bytes", 2*i+1)
		}
	}
	if !a.sync() {
		t.Fatal("no answer to the sync PING")
	}
	// Everything sent is read and held now: measure.
	runtime.GC()
	held := int64(heapInuse()) - int64(g.heapBase)
	t.Logf("%d streams of 6 bytes: live heap %+.1f MiB", streams, float64(held)/(1<<20))
	if held > 16<<20 {
		t.Errorf("live heap grew by %.1f MiB for %d streams of 6 bytes, bound 16 MiB", float64(held)/(1<<20), streams)
	}
	failed, _ := a.results("8")
	a.mu.Lock()
	resets, goAway := len(a.rst), a.goAway
	a.mu.Unlock()
	if failed+resets > 0 || goAway != "" {
		t.Errorf("%d streams failed, %d reset, GOAWAY %q: want all %d held", failed, resets, goAway, streams)
	}
	_ = a.nc.Close()
	g.finish(10)
}
