package triple_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// Attacks on the server's HTTP/2 transport. Each test drives a frame-level
// attacker, written here on x/net/http2's Framer and raw frame bytes, over
// loopback against a real Server, and checks three things: how the
// attacked connection ends (the GOAWAY or RST_STREAM code), that the
// server's heap (runtime.MemStats.HeapInuse) and goroutine count stay
// within a stated bound during and after the attack, and that a
// well-behaved client on another connection keeps succeeding throughout.

// Bounds every attack must stay within, over the baseline taken before it
// starts (client and server idle, connected). The unprotected server grew
// by hundreds of MiB or thousands of goroutines under the same attacks.
const (
	attackHeapBound = 48 << 20 // HeapInuse growth during the attack
	afterHeapBound  = 8 << 20  // HeapInuse growth after it, after a GC
	// Goroutines over the baseline after it: 2, plus the idle handler
	// goroutines the well-behaved client's connection may keep (up to
	// triple.MaxIdleWorkers; its warm-up call left one in the baseline).
	// Calls that overlap the end of the previous one's handler start a new
	// one, so a busy run leaves more idle than a quiet one; a leak from the
	// attacked connections, which are closed, still shows.
	afterGoroutines = 2 + triple.MaxIdleWorkers - 1
)

// calmLog is the server's slog handler in these tests: it reports the
// Warn record the server logs when it ends a connection with
// ENHANCE_YOUR_CALM, so that an attacker that stops reading knows when
// to read its GOAWAY.
type calmLog struct {
	once sync.Once
	ch   chan struct{}
}

func newCalmLog() *calmLog { return &calmLog{ch: make(chan struct{})} }

func (h *calmLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *calmLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "code" && a.Value.String() == http2.ErrCodeEnhanceYourCalm.String() {
			h.once.Do(func() { close(h.ch) })
		}
		return true
	})
	return nil
}

func (h *calmLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *calmLog) WithGroup(string) slog.Handler      { return h }

// guard watches the process while an attack runs: it samples HeapInuse
// and the goroutine count, and calls Echo on its own connection in a loop.
type guard struct {
	t        *testing.T
	heapMax  uint64 // bound on HeapInuse growth during the attack
	gcEach   bool   // sample the heap after a GC: live bytes, not garbage
	heapBase uint64
	gBase    int
	maxHeap  atomic.Uint64
	maxG     atomic.Int64
	calls    atomic.Int64
	fails    atomic.Int64
	firstErr atomic.Pointer[error]
	stop     chan struct{}
	wg       sync.WaitGroup
}

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// startGuard takes the baseline with the good client connected, then
// starts sampling and calling.
func startGuard(t *testing.T, addr string) *guard {
	t.Helper()
	return startGuardLive(t, addr, attackHeapBound, false)
}

// startGuardLive is startGuard with its own bound on heap growth during
// the attack; with gcEach the sampler runs a GC before each sample, so
// that the bound is on live bytes.
func startGuardLive(t *testing.T, addr string, heapMax uint64, gcEach bool) *guard {
	t.Helper()
	client := testpbtriple.NewEchoServiceClient(dial(t, addr))
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "warm up"}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	g := &guard{t: t, heapMax: heapMax, gcEach: gcEach, heapBase: heapInuse(), gBase: runtime.NumGoroutine(), stop: make(chan struct{})}
	g.maxHeap.Store(g.heapBase)
	g.maxG.Store(int64(g.gBase))
	g.wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if g.gcEach {
				runtime.GC()
			}
			if h := heapInuse(); h > g.maxHeap.Load() {
				g.maxHeap.Store(h)
			}
			if n := int64(runtime.NumGoroutine()); n > g.maxG.Load() {
				g.maxG.Store(n)
			}
			select {
			case <-g.stop:
				return
			case <-tick.C:
			}
		}
	})
	g.wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-g.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			text := fmt.Sprint("call ", i)
			resp, err := client.Echo(ctx, &testpb.EchoRequest{Text: text})
			cancel()
			if err == nil && resp.GetText() != text {
				err = fmt.Errorf("wrong answer %q", resp.GetText())
			}
			if err != nil {
				g.fails.Add(1)
				g.firstErr.CompareAndSwap(nil, &err)
			}
			g.calls.Add(1)
		}
	})
	return g
}

// finish stops the guard and checks the bounds: during the attack heap
// growth within attackHeapBound and at most maxGoroutines more goroutines;
// after it, back within afterHeapBound and afterGoroutines.
func (g *guard) finish(maxGoroutines int) {
	t := g.t
	t.Helper()
	close(g.stop)
	g.wg.Wait()
	if n := g.fails.Load(); n > 0 {
		t.Errorf("the well-behaved client failed %d of %d calls during the attack, first: %v", n, g.calls.Load(), *g.firstErr.Load())
	}
	if g.calls.Load() == 0 {
		t.Error("the well-behaved client made no call during the attack")
	}
	grew := g.maxHeap.Load() - g.heapBase
	t.Logf("during the attack: heap +%.1f MiB, goroutines +%d; good client: %d calls", float64(grew)/(1<<20), g.maxG.Load()-int64(g.gBase), g.calls.Load())
	if grew > g.heapMax {
		t.Errorf("server heap grew by %.1f MiB during the attack, bound %d MiB", float64(grew)/(1<<20), g.heapMax>>20)
	}
	if d := int(g.maxG.Load()) - g.gBase; d > maxGoroutines {
		t.Errorf("goroutines grew by %d during the attack, bound %d", d, maxGoroutines)
	}
	// After: the attacked connections are gone; wait for their goroutines.
	var n int
	for range 500 {
		if n = runtime.NumGoroutine(); n <= g.gBase+afterGoroutines {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n > g.gBase+afterGoroutines {
		t.Errorf("%d goroutines after the attack, baseline %d", n, g.gBase)
	}
	// The attacked connection may still be tearing down: wait, a bounded
	// while, for its memory to go.
	var h uint64
	for range 100 {
		runtime.GC()
		if h = heapInuse(); h <= g.heapBase+afterHeapBound {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h > g.heapBase+afterHeapBound {
		t.Errorf("server heap %.1f MiB over the baseline after the attack, bound %d MiB", float64(h-g.heapBase)/(1<<20), afterHeapBound>>20)
	}
}

// attacker is a hand-driven HTTP/2 client connection.
type attacker struct {
	t        *testing.T
	nc       *net.TCPConn
	br       *bufio.Reader
	fr       *http2.Framer
	enc      *hpack.Encoder
	hbuf     bytes.Buffer
	settings map[http2.SettingID]uint32 // the server's first SETTINGS
	payload  []byte
}

// attack connects with a 256 KiB receive buffer (small, so that a server
// answering into a socket nobody reads fills it soon; not smaller than a
// few loopback segments, or TCP reopens the window only on its slow
// persist timer once the attacker reads again), sends the preface, reads
// the server's SETTINGS and acknowledges them.
func attack(t *testing.T, addr string) *attacker {
	t.Helper()
	a := attackNoAck(t, addr)
	if err := a.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return a
}

// ethernetMSSDialer dials with an Ethernet-sized MSS (1460 bytes), so that
// segment sizes and window arithmetic are a real network's rather than
// loopback's (whose 64 KiB MSS moves windows in 64 KiB steps).
var ethernetMSSDialer = net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 1460)
	}); err != nil {
		return err
	}
	return serr
}}

// attackNoAck is attack without the SETTINGS ACK: a client that has not
// yet seen the server's limits.
func attackNoAck(t *testing.T, addr string) *attacker {
	t.Helper()
	c, err := ethernetMSSDialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc := c.(*net.TCPConn)
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetReadBuffer(256 << 10)
	a := &attacker{t: t, nc: nc, br: bufio.NewReaderSize(nc, 64<<10), settings: map[http2.SettingID]uint32{}}
	a.fr = http2.NewFramer(nc, a.br)
	a.fr.AllowIllegalWrites = true
	a.enc = hpack.NewEncoder(&a.hbuf)
	if _, err := nc.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := a.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := a.fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the server's SETTINGS: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			_ = sf.ForeachSetting(func(s http2.Setting) error { a.settings[s.ID] = s.Val; return nil })
			break
		}
	}
	_ = nc.SetReadDeadline(time.Time{})
	return a
}

// block encodes a request header block, with extra fields.
func (a *attacker) block(method string, extra ...string) []byte {
	a.hbuf.Reset()
	kv := append(grpcHeaders(method), extra...)
	for i := 0; i+1 < len(kv); i += 2 {
		_ = a.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return bytes.Clone(a.hbuf.Bytes())
}

// frame appends one raw frame to b.
func frame(b []byte, typ http2.FrameType, flags http2.Flags, id uint32, payload []byte) []byte {
	b = append(b, byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload)), byte(typ), byte(flags))
	b = binary.BigEndian.AppendUint32(b, id)
	return append(b, payload...)
}

// flood writes batch until it was written times times or a write fails;
// it runs in its own goroutine, and done is closed when it returns.
func (a *attacker) flood(batch []byte, times int) (done chan struct{}, written *atomic.Int64) {
	done, written = make(chan struct{}), new(atomic.Int64)
	go func() {
		defer close(done)
		for range times {
			if _, err := a.nc.Write(batch); err != nil {
				return
			}
			written.Add(int64(len(batch)))
		}
	}()
	return done, written
}

var syncPing = [8]byte{'a', 't', 't', 'a', 'c', 'k', 'e', 'd'}

// sendSyncPing asks for an ACK that comes after the answers to all the
// frames sent before: a server that ends the connection for them sends
// GOAWAY before it.
func (a *attacker) sendSyncPing() {
	_ = a.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = a.fr.WritePing(false, syncPing)
}

// outcome is how a connection ended, as the attacker read it.
type outcome struct {
	goAway     bool
	code       http2.ErrCode
	lastStream uint32
	debug      string
	rst        [16]int  // RST_STREAMs received, by code
	rstIDs     []uint32 // the streams of the first 1000
	pingAcks   int
	synced     bool // the sync PING came back: the server carried on
	readErr    error
}

// read scans frames until GOAWAY, the sync PING's ACK, or the end of the
// connection, within 30 s.
func (a *attacker) read() outcome {
	var o outcome
	a.readUntil(&o, time.Now().Add(30*time.Second))
	return o
}

// readUntil scans frames into o until GOAWAY, the sync PING's ACK, the end
// of the connection (it then reports true) or deadline (false, with
// o.readErr the timeout). A frame is consumed only whole, so a later call
// carries on where this one stopped.
func (a *attacker) readUntil(o *outcome, deadline time.Time) bool {
	_ = a.nc.SetReadDeadline(deadline)
	for {
		// Peek and Discard rather than copy: a flood's answers are
		// megabytes of small frames, read against the server's grace.
		hdr, err := a.br.Peek(9)
		if err != nil {
			return o.fail(err)
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		typ, flags := http2.FrameType(hdr[3]), http2.Flags(hdr[4])
		id := binary.BigEndian.Uint32(hdr[5:]) & (1<<31 - 1)
		var p []byte
		if 9+n <= a.br.Size() {
			b, err := a.br.Peek(9 + n)
			if err != nil {
				return o.fail(err)
			}
			// Discard only moves bufio's read index: p stays valid until
			// the next Peek.
			p = b[9:]
			_, _ = a.br.Discard(9 + n)
		} else {
			_, _ = a.br.Discard(9)
			if cap(a.payload) < n {
				a.payload = make([]byte, n)
			}
			p = a.payload[:n]
			if _, err := io.ReadFull(a.br, p); err != nil {
				o.readErr = err
				return true // mid-frame: the stream of frames is lost
			}
		}
		switch typ {
		case http2.FrameGoAway:
			o.goAway = true
			o.lastStream = binary.BigEndian.Uint32(p) & (1<<31 - 1)
			o.code = http2.ErrCode(binary.BigEndian.Uint32(p[4:]))
			o.debug = string(p[8:])
			return true
		case http2.FrameRSTStream:
			o.rst[min(binary.BigEndian.Uint32(p), 15)]++
			if len(o.rstIDs) < 1000 {
				o.rstIDs = append(o.rstIDs, id)
			}
		case http2.FramePing:
			if flags.Has(http2.FlagPingAck) {
				if [8]byte(p) == syncPing {
					o.synced = true
					return true
				}
				o.pingAcks++
			}
		}
	}
}

// fail records err; it reports whether err ended the connection (a read
// deadline does not).
func (o *outcome) fail(err error) bool {
	o.readErr = err
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// wantGoAway checks that the connection ended with GOAWAY code.
func (o outcome) wantGoAway(t *testing.T, code http2.ErrCode) {
	t.Helper()
	switch {
	case o.goAway && o.code == code:
		t.Logf("GOAWAY %v, last stream %d: %q", o.code, o.lastStream, o.debug)
	case o.goAway:
		t.Errorf("GOAWAY %v (%q), want %v", o.code, o.debug, code)
	case o.synced:
		t.Errorf("no GOAWAY: the server answered everything (%d PING acks, resets %v) and kept the connection, want GOAWAY %v", o.pingAcks, o.rst, code)
	default:
		t.Errorf("no GOAWAY before the connection ended (%v), want GOAWAY %v", o.readErr, code)
	}
}

// attackServer serves echo (and, if given, a blocking handler instead)
// with the calm log.
func attackServer(t *testing.T, impl testpbtriple.EchoServiceHandler, opts ...triple.ServerOption) (string, *calmLog) {
	t.Helper()
	calm := newCalmLog()
	if impl == nil {
		impl = &echo{name: "attacked"}
	}
	addr := startServer(t, append([]triple.ServerOption{triple.WithLogger(slog.New(calm))}, opts...), func(s *triple.Server) {
		if err := testpbtriple.RegisterEchoServiceHandler(s, impl); err != nil {
			t.Fatal(err)
		}
	})
	return addr, calm
}

// controlFlood is a client that sends one kind of control frame as fast as
// it can and never reads the answers.
func controlFlood(t *testing.T, f []byte) {
	addr, calm := attackServer(t, nil)
	g := startGuard(t, addr)
	a := attack(t, addr)
	var batch []byte
	for len(batch) < 16<<10 {
		batch = append(batch, f...)
	}
	// 64 MiB of frames: far more answers than the socket buffers hold.
	done, written := a.flood(batch, (64<<20)/len(batch))
	// Over loopback TCP can stall both ways while the attacker reads
	// nothing: its full receive buffer drops the server's segments, and
	// with them the window updates that would let the flood go on (ss shows
	// the server's receive queue empty, its retransmissions backed off, the
	// attacker's send queue full and window-limited). The server has then
	// read everything and holds nothing; the attack is stuck in the kernel,
	// not in the server. So when the flood makes no progress for a while,
	// the attacker reads what has arrived for a moment (still far less than
	// it sends) and floods on; a GOAWAY among what it reads ends the attack.
	var o outcome
	ended, drains, last := false, 0, int64(-1)
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	limit := time.After(time.Minute)
flood:
	for {
		select {
		case <-calm.ch:
			// Cut off: stop sending and read the answers, GOAWAY last.
			_ = a.nc.SetWriteDeadline(time.Now())
			break flood
		case <-done:
			a.sendSyncPing()
			break flood
		case <-progress.C:
			if n := written.Load(); n != last {
				last = n
				continue
			}
			drains++
			if ended = a.readUntil(&o, time.Now().Add(100*time.Millisecond)); ended {
				_ = a.nc.SetWriteDeadline(time.Now())
				break flood
			}
		case <-limit:
			// Neither cut off nor done: the server stopped reading. Look.
			buf := make([]byte, 1<<20)
			t.Errorf("after a minute the server neither read the flood nor ended the connection; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
			_ = a.nc.SetWriteDeadline(time.Now())
			break flood
		}
	}
	start := time.Now()
	if !ended {
		a.readUntil(&o, time.Now().Add(30*time.Second))
	}
	_ = a.nc.Close()
	<-done
	if drains > 0 {
		t.Logf("the flood stalled in TCP %d times; the attacker read for 100 ms each time", drains)
	}
	t.Logf("the attacker wrote %.1f MiB, then read for %v until GOAWAY", float64(written.Load())/(1<<20), time.Since(start).Round(time.Millisecond))
	o.wantGoAway(t, http2.ErrCodeEnhanceYourCalm)
	g.finish(10)
}

// TestAttackPingFlood: PINGs whose ACKs are never read. The server queues
// at most 10,000 answers behind a full socket, then ends the connection
// with GOAWAY ENHANCE_YOUR_CALM.
func TestAttackPingFlood(t *testing.T) {
	controlFlood(t, frame(nil, http2.FramePing, 0, 0, make([]byte, 8)))
}

// TestAttackSettingsFlood: empty SETTINGS frames whose ACKs are never read.
func TestAttackSettingsFlood(t *testing.T) {
	controlFlood(t, frame(nil, http2.FrameSettings, 0, 0, nil))
}

// TestAttackContinuationFlood: a header block that never ends. The server
// advertises SETTINGS_MAX_HEADER_LIST_SIZE (1 MiB), stops reading the block
// past it, resets the stream and ends the connection with GOAWAY
// ENHANCE_YOUR_CALM naming that stream.
func TestAttackContinuationFlood(t *testing.T) {
	addr, _ := attackServer(t, nil)
	g := startGuard(t, addr)
	a := attack(t, addr)
	limit, ok := a.settings[http2.SettingMaxHeaderListSize]
	if !ok || limit == 0 {
		t.Fatalf("the server advertises no SETTINGS_MAX_HEADER_LIST_SIZE: %v", a.settings)
	}
	// HEADERS without END_HEADERS, then CONTINUATIONs of fresh literal
	// fields, 64 MiB in all.
	batch := frame(nil, http2.FrameHeaders, 0, 1, a.block("Echo"))
	var frag []byte
	for i := 0; len(frag) < 16<<10-64; i++ {
		// A literal field without indexing: plain name and value.
		name := fmt.Sprintf("x-flood-%d", i)
		frag = append(append(frag, 0x00, byte(len(name))), name...)
		frag = append(append(frag, 32), strings.Repeat("v", 32)...)
	}
	cont := frame(nil, http2.FrameContinuation, 0, 1, frag)
	var more []byte
	for len(more) < 256<<10 {
		more = append(more, cont...)
	}
	if _, err := a.nc.Write(batch); err != nil {
		t.Fatal(err)
	}
	read := make(chan outcome, 1)
	go func() { read <- a.read() }()
	done, written := a.flood(more, (64<<20)/len(more))
	var o outcome
	select {
	case o = <-read:
	case <-done:
		// The whole flood went in: end the block and ask for a sign.
		_ = a.fr.WriteContinuation(1, true, nil)
		a.sendSyncPing()
		o = <-read
	}
	_ = a.nc.Close()
	<-done
	t.Logf("the attacker wrote %.1f MiB of header block (limit %d bytes)", float64(written.Load())/(1<<20), limit)
	o.wantGoAway(t, http2.ErrCodeEnhanceYourCalm)
	if o.lastStream != 1 {
		t.Errorf("GOAWAY last stream %d, want 1 (the stream was handled: do not retry it)", o.lastStream)
	}
	if o.rst[http2.ErrCodeEnhanceYourCalm] != 1 || len(o.rstIDs) != 1 || o.rstIDs[0] != 1 {
		t.Errorf("resets %v on streams %v, want one ENHANCE_YOUR_CALM on stream 1", o.rst, o.rstIDs)
	}
	g.finish(10)
}

// hangEcho is a handler whose streaming calls ignore cancellation: they
// return only when release is closed, as a careless handler would.
type hangEcho struct {
	echo
	running atomic.Int64
	release chan struct{}
}

// waitRunning waits, a bounded while, for n handlers to run, and returns
// how many do.
func (h *hangEcho) waitRunning(n int64) int64 {
	for range 500 {
		if h.running.Load() == n {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return h.running.Load()
}

func (h *hangEcho) EchoBidi(triple.BidiStreamServer[testpb.EchoRequest, testpb.EchoResponse]) error {
	h.running.Add(1)
	defer h.running.Add(-1)
	<-h.release
	return nil
}

// TestAttackStreamLimit: MAX_CONCURRENT_STREAMS is advertised and enforced.
// Streams past it are refused with REFUSED_STREAM and start no handler; a
// client that keeps opening them is cut off with ENHANCE_YOUR_CALM.
func TestAttackStreamLimit(t *testing.T) {
	const limit = 8
	he := &hangEcho{release: make(chan struct{})}
	addr, _ := attackServer(t, he, triple.WithMaxConcurrentStreams(limit))
	g := startGuard(t, addr)
	a := attack(t, addr)
	if got := a.settings[http2.SettingMaxConcurrentStreams]; got != limit {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want %d", got, limit)
	}
	open := func(a *attacker, from, n int) {
		block := a.block("EchoBidi")
		var b []byte
		for i := range n {
			b = frame(b, http2.FrameHeaders, http2.FlagHeadersEndHeaders, uint32(2*(from+i)+1), block)
		}
		if _, err := a.nc.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	// A client that has not acknowledged the SETTINGS could not know the
	// limit: however many streams it opens past it, they are refused and
	// the connection stays. (Its own server, with handlers that end with
	// the connection.)
	earlyAddr, _ := attackServer(t, nil, triple.WithMaxConcurrentStreams(limit))
	early := attackNoAck(t, earlyAddr)
	open(early, 0, limit+1000)
	early.sendSyncPing()
	o := early.read()
	if !o.synced || o.goAway || o.rst[http2.ErrCodeRefusedStream] != 1000 {
		t.Fatalf("before the SETTINGS ACK: want 1000 refused streams and the connection kept, got %+v", o)
	}
	_ = early.nc.Close()
	// Once acknowledged: the limit, then ten more: ten refusals, the
	// connection stays.
	open(a, 0, limit+10)
	a.sendSyncPing()
	o = a.read()
	if !o.synced || o.goAway {
		t.Fatalf("the server did not carry on after ten refused streams: %+v", o)
	}
	if o.rst[http2.ErrCodeRefusedStream] != 10 || len(o.rstIDs) != 10 {
		t.Errorf("resets %v, want 10 REFUSED_STREAM", o.rst)
	}
	for _, id := range o.rstIDs {
		if id <= 2*limit {
			t.Errorf("stream %d refused, within the limit", id)
		}
	}
	if n := he.waitRunning(limit); n != limit {
		t.Errorf("%d handlers running, want %d", n, limit)
	}
	// A client that goes on ignoring the limit is cut off.
	open(a, limit+10, 1000)
	a.sendSyncPing()
	o = a.read()
	o.wantGoAway(t, http2.ErrCodeEnhanceYourCalm)
	if n := he.running.Load(); n != limit {
		t.Errorf("%d handlers running, want %d", n, limit)
	}
	_ = a.nc.Close()
	close(he.release)
	g.finish(2*limit + 10) // the handlers of both connections, and theirs
}

// TestAttackRapidReset: HEADERS + RST_STREAM pairs. Resets of streams the
// server never answered count against the streams it served; past the
// budget (twice MAX_CONCURRENT_STREAMS) the connection ends with GOAWAY
// ENHANCE_YOUR_CALM.
func TestAttackRapidReset(t *testing.T) {
	t.Run("unary, never started", func(t *testing.T) {
		addr, _ := attackServer(t, nil)
		rapidReset(t, addr, "Echo", 20, nil)
	})
	// Handlers that ignore the reset stay running; they hold their slots,
	// so no more than the limit of them ever run.
	t.Run("handlers that ignore the reset", func(t *testing.T) {
		const limit = 16
		he := &hangEcho{release: make(chan struct{})}
		addr, _ := attackServer(t, he, triple.WithMaxConcurrentStreams(limit))
		rapidReset(t, addr, "EchoBidi", limit+20, func() {
			if n := he.running.Load(); n > limit {
				t.Errorf("%d handlers running, limit %d", n, limit)
			}
			close(he.release)
		})
	})
}

// rapidReset sends the pairs on a new connection; release runs, if set,
// once the connection is over and before the bounds are checked.
func rapidReset(t *testing.T, addr, method string, maxGoroutines int, release func()) {
	g := startGuard(t, addr)
	a := attack(t, addr)
	block := a.block(method)
	// 100,000 pairs, in batches of 100.
	var batch []byte
	id := uint32(1)
	pairs := make([][]byte, 0, 1000)
	for range 1000 {
		batch = batch[:0]
		for range 100 {
			batch = frame(batch, http2.FrameHeaders, http2.FlagHeadersEndHeaders, id, block)
			batch = frame(batch, http2.FrameRSTStream, 0, id, binary.BigEndian.AppendUint32(nil, uint32(http2.ErrCodeCancel)))
			id += 2
		}
		pairs = append(pairs, bytes.Clone(batch))
	}
	read := make(chan outcome, 1)
	go func() { read <- a.read() }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, b := range pairs {
			if _, err := a.nc.Write(b); err != nil {
				return
			}
		}
	}()
	var o outcome
	select {
	case o = <-read:
	case <-done:
		a.sendSyncPing()
		o = <-read
	}
	_ = a.nc.Close()
	<-done
	o.wantGoAway(t, http2.ErrCodeEnhanceYourCalm)
	if release != nil {
		release()
	}
	g.finish(maxGoroutines)
}

// TestAttackFlowControl: DATA past the stream window, to a handler that
// does not read, is refused with RST_STREAM FLOW_CONTROL_ERROR instead of
// buffered: a stream holds at most its window of unread messages.
func TestAttackFlowControl(t *testing.T) {
	he := &hangEcho{release: make(chan struct{})}
	addr, _ := attackServer(t, he)
	g := startGuard(t, addr)
	a := attack(t, addr)
	if _, err := a.nc.Write(frame(nil, http2.FrameHeaders, http2.FlagHeadersEndHeaders, 1, a.block("EchoBidi"))); err != nil {
		t.Fatal(err)
	}
	// Whole 16 KiB messages, 64 MiB of them, never waiting for a
	// WINDOW_UPDATE.
	msg := make([]byte, 16<<10-9)
	msg[4] = byte(len(msg) - 5) // length prefix: 16,370 bytes
	msg[3] = byte((len(msg) - 5) >> 8)
	var batch []byte
	for len(batch) < 256<<10 {
		batch = frame(batch, http2.FrameData, 0, 1, msg)
	}
	read := make(chan outcome, 1)
	go func() { read <- a.read() }()
	done, written := a.flood(batch, (64<<20)/len(batch))
	<-done
	a.sendSyncPing()
	o := <-read
	_ = a.nc.Close()
	t.Logf("the attacker wrote %.1f MiB on stream 1", float64(written.Load())/(1<<20))
	if o.rst[http2.ErrCodeFlowControl] != 1 {
		t.Errorf("resets %v (GOAWAY %v %v), want one FLOW_CONTROL_ERROR for stream 1", o.rst, o.goAway, o.code)
	}
	close(he.release)
	g.finish(10)
}

// TestAttackSlowloris: connections that send the preface and stop, or the
// preface and SETTINGS and nothing more, are closed with GOAWAY NO_ERROR
// after the handshake or idle timeout; garbage after the preface gets
// GOAWAY PROTOCOL_ERROR.
func TestAttackSlowloris(t *testing.T) {
	addr, _ := attackServer(t, nil, triple.WithHandshakeTimeout(200*time.Millisecond), triple.WithIdleTimeout(200*time.Millisecond))
	g := startGuard(t, addr)
	const conns = 200
	type result struct {
		what string
		o    outcome
	}
	results := make(chan result, conns+1)
	var wg sync.WaitGroup
	// slow dials, lets send write what it will, and reads how it ends.
	slow := func(what string, send func(c net.Conn, fr *http2.Framer)) {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				results <- result{"dial", outcome{readErr: err}}
				return
			}
			defer c.Close()
			a := &attacker{t: t, nc: c.(*net.TCPConn), br: bufio.NewReader(c)}
			send(c, http2.NewFramer(c, a.br))
			results <- result{what, a.read()}
		})
	}
	for i := range conns {
		if i%2 == 0 {
			slow("preface only", func(c net.Conn, _ *http2.Framer) { _, _ = c.Write([]byte(http2.ClientPreface)) })
			continue
		}
		slow("preface and SETTINGS", func(c net.Conn, fr *http2.Framer) {
			_, _ = c.Write([]byte(http2.ClientPreface))
			_ = fr.WriteSettings()
		})
	}
	slow("garbage", func(c net.Conn, _ *http2.Framer) {
		_, _ = c.Write([]byte(http2.ClientPreface + "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	})
	wg.Wait()
	close(results)
	bad := 0
	for r := range results {
		want := http2.ErrCodeNo
		if r.what == "garbage" {
			want = http2.ErrCodeProtocol
		}
		if !r.o.goAway || r.o.code != want {
			bad++
			if bad <= 3 {
				t.Errorf("%s: GOAWAY %v code %v (%v), want GOAWAY %v", r.what, r.o.goAway, r.o.code, r.o.readErr, want)
			}
		}
	}
	if bad > 3 {
		t.Errorf("... %d connections in all did not end as they should", bad)
	}
	g.finish(5*conns + 10)
}

func TestAttackIdleTimeoutSparesBusyConnections(t *testing.T) {
	// A connection with a call in flight outlives the idle timeout; once
	// idle it gets GOAWAY NO_ERROR, and the client's next call dials again.
	be := &blockEcho{started: make(chan struct{}, 1), ended: make(chan error, 1)}
	addr, _ := attackServer(t, be, triple.WithIdleTimeout(50*time.Millisecond))
	client := testpbtriple.NewEchoServiceClient(dial(t, addr))
	cancel := openBlocked(t, client, be)
	// Many idle timeouts pass while the stream is open: it still works.
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-be.ended:
		t.Fatalf("the stream ended while open: %v", err)
	default:
	}
	cancel()
	if err := <-be.ended; err == nil {
		t.Fatal("the stream ended without an error after its context was cancelled")
	}
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "after"}); err != nil {
		t.Fatal(err)
	}
}

// TestAttackStreamErrorFlood: frames that each call for a RST_STREAM (a
// zero WINDOW_UPDATE on a stream is a stream PROTOCOL_ERROR), never read.
// The resets queue within the same bound as PING acks.
func TestAttackStreamErrorFlood(t *testing.T) {
	controlFlood(t, frame(nil, http2.FrameWindowUpdate, 0, 1, make([]byte, 4)))
}

// openBlocked opens a bidi stream that be's handler holds, and returns the
// stream's cancel. On a loaded machine the idle timeout can pass between
// the dial and the stream's HEADERS: the server's GOAWAY then refuses the
// unprocessed stream (UNAVAILABLE) and it is opened again, a bounded number
// of times.
func openBlocked(t *testing.T, client testpbtriple.EchoServiceClient, be *blockEcho) context.CancelFunc {
	t.Helper()
	for range 10 {
		ctx, cancel := context.WithCancel(ctxT(t))
		st, err := client.EchoBidi(ctx)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		_ = st.Send(&testpb.EchoRequest{})
		recvErr := make(chan error, 1)
		go func() {
			_, err := st.Recv()
			recvErr <- err
		}()
		select {
		case <-be.started:
			return cancel
		case err := <-recvErr:
			cancel()
			if triple.CodeOf(err) != triple.CodeUnavailable {
				t.Fatalf("the stream ended before its handler started: %v", err)
			}
		case <-time.After(10 * time.Second):
			cancel()
			t.Fatal("the stream did not reach its handler within 10s")
		}
	}
	t.Fatal("ten streams in a row were refused by the idle timeout")
	return nil
}
