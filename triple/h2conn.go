package triple

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The HTTP/2 transport shared by Server and ClientConn. One connection has
// one reader goroutine (frames in, parsed into per-stream message queues),
// one small writer goroutine for control frames the reader must not block
// on, and callers that write their own HEADERS and DATA under a write lock.
// The last writer in line flushes, so frames of concurrent calls leave in
// one syscall and a lone unary call costs one write.

const (
	// Receive windows: large, so that a stream rarely waits for a
	// WINDOW_UPDATE on a fast network. They bound buffered memory per
	// stream and per connection.
	streamWindow = 4 << 20
	connWindow   = 16 << 20
	// initialWindow is HTTP/2's window before SETTINGS say otherwise.
	initialWindow = 65535
	// maxHeaderList bounds one decoded header block (names + values + 32
	// per field, as HTTP/2 counts).
	maxHeaderList = 1 << 20
	// maxDataChunk bounds one DATA frame we send, whatever the peer allows.
	maxDataChunk = 256 << 10
	ioBufSize    = 32 << 10
	maxStreamID  = 1<<31 - 1
	// frameHeaderLen is the size of an HTTP/2 frame header.
	frameHeaderLen = 9
	// maxCtrlQueue bounds the frames queued in answer to the peer (PING
	// and SETTINGS acks, resets) while the socket does not take them: a
	// peer that asks faster than it reads is cut off with
	// ENHANCE_YOUR_CALM instead of growing the queue.
	maxCtrlQueue = 10000
	// goAwayGrace is how long a GOAWAY for a peer's error may take to
	// leave, and how long the peer may go on sending before the close. A
	// peer that stopped reading has made the kernel back its
	// retransmissions off (1.6-3.2 s seen over loopback): a shorter grace
	// closes, and resets, before the GOAWAY gets through.
	goAwayGrace = 5 * time.Second
)

// Errors that end a connection with GOAWAY ENHANCE_YOUR_CALM.
var (
	errCtrlFlood = fmt.Errorf("triple: the peer sent PINGs, SETTINGS or streams faster than it read the %d answers queued for it: %w",
		maxCtrlQueue, http2.ConnectionError(http2.ErrCodeEnhanceYourCalm))
	errHeaderFlood = fmt.Errorf("triple: header block larger than SETTINGS_MAX_HEADER_LIST_SIZE (%d bytes): %w",
		maxHeaderList, http2.ConnectionError(http2.ErrCodeEnhanceYourCalm))
)

// control frames queued by goroutines that must not block on the socket.
type ctrlKind uint8

const (
	ctrlWindow ctrlKind = iota
	ctrlSettingsAck
	ctrlPing
	ctrlPingAck
	ctrlRST
	ctrlGoAway
	ctrlClose // flush what is queued, then close the connection
)

type ctrlFrame struct {
	kind ctrlKind
	id   uint32
	val  uint32
	code http2.ErrCode
	data [8]byte
}

var errConnClosed = errors.New("connection closed")

// h2Conn is the machinery common to both ends of one connection.
type h2Conn struct {
	nc       net.Conn
	bw       *bufio.Writer
	fr       *http2.Framer
	isClient bool

	// Writing: wmu guards the framer's write side, the HPACK encoder and
	// hbuf. wwaiting counts goroutines waiting for wmu.
	wmu       sync.Mutex
	wwaiting  atomic.Int32
	henc      *hpack.Encoder
	hbuf      bytes.Buffer
	werr      error
	tableSize atomic.Uint32 // peer's SETTINGS_HEADER_TABLE_SIZE + 1, 0 when unchanged

	ctrlMu    sync.Mutex
	ctrl      []ctrlFrame
	ctrlSpare []ctrlFrame
	goAwayMsg []byte // debug data of the next GOAWAY
	kick      chan struct{}

	// Reading, owned by the reader goroutine.
	hdec      *hpack.Decoder
	fields    []hpack.HeaderField
	hsize     int
	hoverflow bool
	connOwed  int   // received bytes not yet returned with a connection WINDOW_UPDATE
	recvWin   int64 // bytes the peer may still send on the connection (client; a server keeps its window in connBudget)

	// Streams, by id.
	mu      sync.Mutex
	streams map[uint32]*h2Stream

	// Send flow control.
	fcMu        sync.Mutex
	sendWin     int64
	peerInitWin int64
	peerFrame   int
	fcWaiters   int
	fcWake      chan struct{}

	keepalive time.Duration
	lastRead  atomic.Int64
	pingOut   atomic.Bool

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error // set before closed is closed
}

// h2Stream is one stream's transport state; the client and server attach
// their call state through cs or ss.
type h2Stream struct {
	id       uint32
	sendDone bool         // guarded by h2Conn.fcMu: no more DATA may go out
	recvWin  atomic.Int64 // bytes the peer may still send on this stream
	sendWin  int64        // guarded by h2Conn.fcMu
	recv     recvBuf
	cs       *clientStream
	ss       *h2ServerStream
}

func (c *h2Conn) init(nc net.Conn, br *bufio.Reader, isClient bool, keepalive time.Duration) {
	c.nc = nc
	c.isClient = isClient
	c.bw = bufio.NewWriterSize(nc, ioBufSize)
	c.fr = http2.NewFramer(c.bw, br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(16 << 10) // HTTP/2's default; we do not advertise more
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.hdec = hpack.NewDecoder(4096, c.emitField)
	c.hdec.SetMaxStringLength(maxHeaderList)
	c.kick = make(chan struct{}, 1)
	c.streams = make(map[uint32]*h2Stream)
	c.sendWin = initialWindow
	c.peerInitWin = initialWindow
	c.peerFrame = 16 << 10
	c.recvWin = connWindow
	c.fcWake = make(chan struct{})
	c.closed = make(chan struct{})
	c.keepalive = keepalive
	c.lastRead.Store(time.Now().UnixNano())
}

// writeSettings sends our SETTINGS and grows the connection window from
// HTTP/2's initial one to connWin.
func (c *h2Conn) writeSettings(connWin int64, extra ...http2.Setting) error {
	return c.write(func() error {
		s := append([]http2.Setting{
			{ID: http2.SettingInitialWindowSize, Val: streamWindow},
			{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderList},
		}, extra...)
		if err := c.fr.WriteSettings(s...); err != nil {
			return err
		}
		return c.fr.WriteWindowUpdate(0, uint32(connWin-initialWindow))
	})
}

// write runs fn holding the write lock, after any queued control frames.
// The last goroutine in line flushes.
func (c *h2Conn) write(fn func() error) error {
	c.wwaiting.Add(1)
	c.wmu.Lock()
	c.wwaiting.Add(-1)
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	closing, err := c.writeCtrlLocked()
	if err == nil && fn != nil {
		err = fn()
	}
	if err == nil && (closing || c.wwaiting.Load() == 0) {
		err = c.bw.Flush()
	}
	if err != nil || closing {
		if err == nil {
			err = errConnClosed
		}
		c.werr = err
		c.close(err)
	}
	return err
}

// flush puts everything queued and buffered on the wire now. write leaves
// the flush to the last writer in line, which is wrong when the caller acts
// on the connection next (connError half-closes it right after GOAWAY).
func (c *h2Conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if _, err := c.writeCtrlLocked(); err != nil {
		return err
	}
	return c.bw.Flush()
}

func (c *h2Conn) writeCtrlLocked() (closing bool, err error) {
	if v := c.tableSize.Swap(0); v != 0 {
		c.henc.SetMaxDynamicTableSizeLimit(v - 1)
	}
	c.ctrlMu.Lock()
	q := c.ctrl
	c.ctrl = c.ctrlSpare[:0]
	c.ctrlMu.Unlock()
	for i := range q {
		f := &q[i]
		switch f.kind {
		case ctrlWindow:
			err = c.fr.WriteWindowUpdate(f.id, f.val)
		case ctrlSettingsAck:
			err = c.fr.WriteSettingsAck()
		case ctrlPing:
			err = c.fr.WritePing(false, f.data)
		case ctrlPingAck:
			err = c.fr.WritePing(true, f.data)
		case ctrlRST:
			err = c.fr.WriteRSTStream(f.id, f.code)
		case ctrlGoAway:
			c.ctrlMu.Lock()
			msg := c.goAwayMsg
			c.ctrlMu.Unlock()
			err = c.fr.WriteGoAway(f.id, f.code, msg)
		case ctrlClose:
			closing = true
		}
		if err != nil {
			break
		}
	}
	c.ctrlMu.Lock()
	c.ctrlSpare = q[:0]
	c.ctrlMu.Unlock()
	return closing, err
}

// queue hands a control frame to the writer goroutine; it never blocks.
func (c *h2Conn) queue(f ctrlFrame) {
	c.ctrlMu.Lock()
	c.ctrl = append(c.ctrl, f)
	c.ctrlMu.Unlock()
	c.kickWriter()
}

// queueReply queues a frame the peer's frames call for. It fails with
// errCtrlFlood, and queues nothing, when maxCtrlQueue such frames already
// wait for a peer that does not read them.
func (c *h2Conn) queueReply(f ctrlFrame) error {
	c.ctrlMu.Lock()
	if len(c.ctrl) >= maxCtrlQueue {
		c.ctrlMu.Unlock()
		return errCtrlFlood
	}
	c.ctrl = append(c.ctrl, f)
	c.ctrlMu.Unlock()
	c.kickWriter()
	return nil
}

func (c *h2Conn) kickWriter() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *h2Conn) writeLoop() {
	for {
		select {
		case <-c.kick:
			_ = c.write(nil)
		case <-c.closed:
			return
		}
	}
}

// close ends the connection; err says why to calls still on it.
func (c *h2Conn) close(err error) {
	c.closeOnce.Do(func() {
		c.closeErr = err
		close(c.closed)
		_ = c.nc.Close()
		c.fcMu.Lock()
		c.wakeFlowLocked()
		c.fcMu.Unlock()
	})
}

func (c *h2Conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *h2Conn) keepaliveLoop() {
	d := c.keepalive
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
		}
		idle := time.Duration(time.Now().UnixNano() - c.lastRead.Load())
		if idle < d {
			c.pingOut.Store(false)
			t.Reset(d - idle)
			continue
		}
		if c.pingOut.Load() {
			c.close(errors.New("keepalive: the peer did not answer a PING in time"))
			return
		}
		c.pingOut.Store(true)
		c.queue(ctrlFrame{kind: ctrlPing})
		t.Reset(d)
	}
}

// hf encodes one header field into hbuf; call with wmu held.
func (c *h2Conn) hf(name, value string) {
	_ = c.henc.WriteField(hpack.HeaderField{Name: name, Value: value})
}

// hfNoIndex encodes a field that changes on every call, keeping it out of
// the dynamic table.
func (c *h2Conn) hfNoIndex(name, value string) {
	_ = c.henc.WriteField(hpack.HeaderField{Name: name, Value: value, Sensitive: true})
}

// endHeaders writes the fields encoded since the last call as HEADERS and
// CONTINUATION frames; call with wmu held.
func (c *h2Conn) endHeaders(id uint32, endStream bool) error {
	block := c.hbuf.Bytes()
	defer c.hbuf.Reset()
	limit := c.frameSize()
	first := block
	if len(first) > limit {
		first = first[:limit]
	}
	block = block[len(first):]
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(block) == 0})
	for err == nil && len(block) > 0 {
		n := min(len(block), limit)
		err = c.fr.WriteContinuation(id, n == len(block), block[:n])
		block = block[n:]
	}
	return err
}

func (c *h2Conn) frameSize() int {
	c.fcMu.Lock()
	defer c.fcMu.Unlock()
	return c.peerFrame
}

// reserve takes up to want bytes of send window for st, waiting for
// WINDOW_UPDATEs while there is none. cancel ends the wait.
func (c *h2Conn) reserve(st *h2Stream, want int, cancel <-chan struct{}) (int, error) {
	c.fcMu.Lock()
	for {
		if st.sendDone {
			c.fcMu.Unlock()
			return 0, errStreamDone
		}
		if c.isClosed() {
			c.fcMu.Unlock()
			return 0, errConnClosed
		}
		n := int64(min(want, c.peerFrame, maxDataChunk))
		n = min(n, c.sendWin, st.sendWin)
		if n > 0 {
			c.sendWin -= n
			st.sendWin -= n
			c.fcMu.Unlock()
			return int(n), nil
		}
		c.fcWaiters++
		wake := c.fcWake
		c.fcMu.Unlock()
		select {
		case <-wake:
		case <-cancel:
			c.fcMu.Lock()
			c.fcWaiters--
			c.fcMu.Unlock()
			return 0, errCanceled
		}
		c.fcMu.Lock()
		c.fcWaiters--
	}
}

var (
	errStreamDone = errors.New("stream closed")
	errCanceled   = errors.New("canceled")
)

// wakeFlowLocked wakes everyone waiting in reserve; call with fcMu held.
func (c *h2Conn) wakeFlowLocked() {
	if c.fcWaiters > 0 {
		close(c.fcWake)
		c.fcWake = make(chan struct{})
	}
}

// stopSending marks st so that no more DATA goes out for it.
func (c *h2Conn) stopSending(st *h2Stream) {
	c.fcMu.Lock()
	st.sendDone = true
	c.wakeFlowLocked()
	c.fcMu.Unlock()
}

// sendData writes data on st as DATA frames within the flow-control
// windows. pre runs before the first frame and post after the last, in the
// same lock hold (headers, trailers). endStream sets END_STREAM on the last
// DATA frame.
func (c *h2Conn) sendData(st *h2Stream, pre func() error, data []byte, endStream bool, post func() error, cancel <-chan struct{}) error {
	for {
		n := 0
		if len(data) > 0 {
			var err error
			if n, err = c.reserve(st, len(data), cancel); err != nil {
				return err
			}
		}
		chunk, last := data[:n], n == len(data)
		data = data[n:]
		err := c.write(func() error {
			if pre != nil {
				if err := pre(); err != nil {
					return err
				}
			}
			if len(chunk) > 0 || (last && endStream) {
				if err := c.fr.WriteData(st.id, last && endStream, chunk); err != nil {
					return err
				}
			}
			if last && post != nil {
				return post()
			}
			return nil
		})
		if err != nil || last {
			return err
		}
		pre = nil
	}
}

// Reading.

func (c *h2Conn) emitField(f hpack.HeaderField) {
	c.hsize += int(f.Size())
	if c.hsize > maxHeaderList {
		c.hoverflow = true
		return
	}
	c.fields = append(c.fields, f)
}

// readHeaderBlock decodes the header block that starts with f into
// c.fields, reading CONTINUATION frames as needed. Once the block is past
// maxHeaderList, decoded or on the wire (frame headers counted, so empty
// CONTINUATIONs count too), and more of it is still to come, it stops
// with errHeaderFlood without reading the rest: the HPACK state is lost
// with it, so the connection must end.
func (c *h2Conn) readHeaderBlock(f *http2.HeadersFrame) error {
	c.fields, c.hsize, c.hoverflow = c.fields[:0], 0, false
	ended := f.HeadersEnded()
	frag := f.HeaderBlockFragment()
	wire := 0
	for {
		wire += len(frag) + frameHeaderLen
		if _, err := c.hdec.Write(frag); err != nil {
			return http2.ConnectionError(http2.ErrCodeCompression)
		}
		if ended {
			break
		}
		if c.hoverflow || wire > maxHeaderList {
			return errHeaderFlood
		}
		next, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		cf, ok := next.(*http2.ContinuationFrame)
		if !ok {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		frag, ended = cf.HeaderBlockFragment(), cf.HeadersEnded()
	}
	if err := c.hdec.Close(); err != nil {
		return http2.ConnectionError(http2.ErrCodeCompression)
	}
	return nil
}

// onSettings applies the peer's SETTINGS and acknowledges them.
func (c *h2Conn) onSettings(f *http2.SettingsFrame, maxStreams func(uint32)) error {
	if f.IsAck() {
		return nil
	}
	// Several INITIAL_WINDOW_SIZE values in one frame add up to the
	// last: the streams are updated once per frame, not once per value.
	initWin := int64(-1)
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			initWin = int64(s.Val)
		case http2.SettingMaxFrameSize:
			c.fcMu.Lock()
			c.peerFrame = int(s.Val)
			c.fcMu.Unlock()
		case http2.SettingHeaderTableSize:
			c.tableSize.Store(min(s.Val, 1<<20) + 1)
		case http2.SettingMaxConcurrentStreams:
			if maxStreams != nil {
				maxStreams(s.Val)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if initWin >= 0 {
		c.mu.Lock()
		c.fcMu.Lock()
		delta := initWin - c.peerInitWin
		c.peerInitWin = initWin
		for _, st := range c.streams {
			st.sendWin += delta
		}
		c.wakeFlowLocked()
		c.fcMu.Unlock()
		c.mu.Unlock()
	}
	return c.queueReply(ctrlFrame{kind: ctrlSettingsAck})
}

func (c *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		c.fcMu.Lock()
		defer c.fcMu.Unlock()
		c.sendWin += inc
		if c.sendWin > maxStreamID {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.wakeFlowLocked()
		return nil
	}
	st := c.stream(f.StreamID)
	if st == nil {
		return nil
	}
	c.fcMu.Lock()
	defer c.fcMu.Unlock()
	if st.sendDone && st.sendWin > maxStreamID {
		return nil // reset for this already
	}
	st.sendWin += inc
	c.wakeFlowLocked()
	if st.sendWin > maxStreamID {
		st.sendDone = true
		return c.queueReply(ctrlFrame{kind: ctrlRST, id: f.StreamID, code: http2.ErrCodeFlowControl})
	}
	return nil
}

func (c *h2Conn) onPing(f *http2.PingFrame) error {
	if f.IsAck() {
		c.pingOut.Store(false)
		return nil
	}
	return c.queueReply(ctrlFrame{kind: ctrlPingAck, data: f.Data})
}

// onDataFlow takes a DATA frame of n bytes (padding included) out of the
// connection's receive window and returns window as the reader takes the
// data in. A peer that sends past the window broke flow control.
func (c *h2Conn) onDataFlow(n int) error {
	c.recvWin -= int64(n)
	if c.recvWin < 0 {
		return fmt.Errorf("triple: the peer sent DATA past the connection window: %w", http2.ConnectionError(http2.ErrCodeFlowControl))
	}
	c.connOwed += n
	if c.connOwed >= connWindow/4 {
		c.queue(ctrlFrame{kind: ctrlWindow, val: uint32(c.connOwed)}) // at most connWindow
		c.recvWin += int64(c.connOwed)
		c.connOwed = 0
	}
	return nil
}

// onStreamFlow takes n bytes out of st's receive window; false means the
// peer sent past it.
func (c *h2Conn) onStreamFlow(st *h2Stream, n int) bool {
	return st.recvWin.Add(-int64(n)) >= 0
}

// streamCredit returns stream window to the peer.
func (c *h2Conn) streamCredit(st *h2Stream, n int) {
	if n > 0 {
		st.recvWin.Add(int64(n))
		c.queue(ctrlFrame{kind: ctrlWindow, id: st.id, val: uint32(n)}) // at most 2 windows
	}
}

func (c *h2Conn) stream(id uint32) *h2Stream {
	c.mu.Lock()
	st := c.streams[id]
	c.mu.Unlock()
	return st
}

// readFrame reads the next frame and notes the time for keepalive.
func (c *h2Conn) readFrame() (http2.Frame, error) {
	f, err := c.fr.ReadFrame()
	if c.keepalive > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return f, err
}

// connErrCode tells a connection error of the peer (answered with
// GOAWAY) from an I/O error.
func connErrCode(err error) (http2.ErrCode, bool) {
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		return http2.ErrCode(ce), true
	}
	if errors.Is(err, http2.ErrFrameTooLarge) {
		return http2.ErrCodeFrameSize, true
	}
	return 0, false
}

// connError sends GOAWAY for a protocol violation and closes. Frames
// still queued are dropped: the connection ends, and a peer that floods
// the queue must not delay its GOAWAY. The frames in
// first go out before the GOAWAY.
func (c *h2Conn) connError(lastID uint32, code http2.ErrCode, err error, first ...ctrlFrame) {
	msg := err.Error()
	if len(msg) > 256 {
		msg = msg[:256]
	}
	c.ctrlMu.Lock()
	c.ctrl = append(append(c.ctrl[:0], first...), ctrlFrame{kind: ctrlGoAway, id: lastID, code: code})
	c.goAwayMsg = []byte(msg)
	c.ctrlMu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(goAwayGrace))
	_ = c.flush()
	// Read what the peer still sends, until it closes or for goAwayGrace:
	// closing with unread data would reset the connection and drop the
	// GOAWAY still on its way (behind a flood's answers, megabytes of it).
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = c.nc.SetReadDeadline(time.Now().Add(goAwayGrace))
		_, _ = io.Copy(io.Discard, c.nc)
	}
	c.close(err)
}

// recvBuf turns a stream's DATA into whole gRPC messages. The reader
// goroutine puts; the call's goroutine takes.
type recvBuf struct {
	mu      sync.Mutex
	maxRecv int
	msgs    []inMsg
	first   [1]inMsg
	hdr     [envelopeHeaderLen]byte
	raw     bool // body bytes as they come, not gRPC-framed
	eof     bool // END_STREAM seen
	waiting bool
	hdrN    int
	cur     *[]byte    // the message being assembled: its last chunk
	chunks  *[]*[]byte // its earlier chunks, full (made at the first)
	need    int        // bytes of it still to come
	queued  int        // bytes of whole messages waiting to be taken
	owed    int        // stream window held back while too much is queued
	err     error
	notify  chan struct{}

	// The connection's receive buffer (server only; nil on the client).
	// part and whole are the capacity of the buffers this stream holds,
	// for the message being assembled and for whole messages queued; bud
	// knows them, except inside put, which reports what it changed.
	bud         *connBudget
	part, whole int
}

type inMsg struct {
	buf        *[]byte
	compressed bool
}

var msgPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getMsgBuf(n int) *[]byte {
	if n > 64<<10 {
		b := make([]byte, 0, min(n, 1<<20))
		return &b
	}
	p := msgPool.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, 0, max(n, 512))
	}
	*p = (*p)[:0]
	return p
}

func putMsgBuf(p *[]byte) {
	if p != nil && cap(*p) <= 64<<10 {
		msgPool.Put(p)
	}
}

func (b *recvBuf) init(maxRecv int) {
	b.maxRecv = maxRecv
	b.msgs = b.first[:0]
}

// waitLocked marks the taker as waiting and returns the channel that wakes
// it, made at the first wait: a server handler finds its unary request
// complete and never waits, so it never pays for the channel.
func (b *recvBuf) waitLocked() <-chan struct{} {
	if b.notify == nil {
		b.notify = make(chan struct{}, 1)
	}
	b.waiting = true
	return b.notify
}

// wakeLocked wakes the taker if it waits.
func (b *recvBuf) wakeLocked() {
	if b.waiting {
		b.waiting = false
		select {
		case b.notify <- struct{}{}:
		default:
		}
	}
}

// put adds DATA; it returns how much stream window to give back now,
// whether this data broke the stream (a message too large or malformed),
// and, on a server, whether the connection's receive buffer is stuck
// (see connBudget.adjust).
func (b *recvBuf) put(p []byte, end bool) (credit int, failed, stuck bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if b.err != nil || b.eof {
		return n, false, b.report(0, 0)
	}
	before := len(b.msgs)
	part0, whole0, reserved := b.part, b.whole, 0
	if b.raw {
		if len(p) > 0 {
			buf := getMsgBuf(len(p))
			*buf = append(*buf, p...)
			b.msgs = append(b.msgs, inMsg{buf: buf})
			b.queued += len(p)
			b.whole += cap(*buf)
		}
		p = nil
	}
	for len(p) > 0 {
		if b.hdrN < envelopeHeaderLen {
			k := copy(b.hdr[b.hdrN:], p)
			b.hdrN += k
			p = p[k:]
			if b.hdrN < envelopeHeaderLen {
				break
			}
			flags, size := b.hdr[0], binary.BigEndian.Uint32(b.hdr[1:])
			if flags&^flagCompressed != 0 {
				b.err = Errorf(CodeInternal, "malformed message prefix: unknown flags 0x%02x", flags)
				break
			}
			if uint64(size) > uint64(b.maxRecv) {
				b.err = Errorf(CodeResourceExhausted, "message of %d bytes exceeds the receive limit of %d bytes", size, b.maxRecv)
				break
			}
			b.need = int(size)
		}
		for b.need > 0 && len(p) > 0 {
			if b.cur == nil || len(*b.cur) == cap(*b.cur) {
				b.cur = b.newChunk(len(p), &reserved)
			}
			k := min(cap(*b.cur)-len(*b.cur), b.need, len(p))
			*b.cur = append(*b.cur, p[:k]...)
			b.need -= k
			p = p[k:]
		}
		if b.need == 0 {
			b.complete()
		}
	}
	if end {
		b.eof = true
	}
	failed = b.err != nil
	if len(b.msgs) != before || end || failed {
		b.wakeLocked()
	}
	stuck = b.report(b.part-part0-reserved+b.whole-whole0, b.whole-whole0)
	if b.queued > streamWindow {
		b.owed += n
		return 0, failed, stuck
	}
	n += b.owed
	b.owed = 0
	return n, failed, stuck
}

// newChunk allocates the next buffer of the message being assembled, avail
// bytes of it in hand. A message in hand whole takes a pooled buffer. On a
// server, chunks hold what arrived, so that buffers do not run ahead of the
// data; once 1/reserveShare of the message is in (at the first chunk for
// one of up to 16 frames), it gets one buffer of its whole size, with what
// arrived copied in, if the connection's receive buffer has room for it
// (what it reserves there is added to reserved). A client allocates up to
// 1 MiB ahead.
func (b *recvBuf) newChunk(avail int, reserved *int) *[]byte {
	n := min(b.need, avail)
	if b.cur == nil && n == b.need {
		buf := getMsgBuf(n)
		b.part += cap(*buf)
		return buf
	}
	if b.bud != nil {
		size := int(binary.BigEndian.Uint32(b.hdr[1:]))
		if (size-b.need+n)*reserveShare >= size && b.bud.reserve(size-b.part) {
			*reserved += size - b.part
			all := newBuf(size)
			if b.chunks != nil {
				for _, c := range *b.chunks {
					*all = append(*all, *c...)
				}
				b.dropChunks()
			}
			if b.cur != nil {
				*all = append(*all, *b.cur...)
			}
			b.part = size
			return all
		}
	}
	if b.cur != nil {
		if b.chunks == nil {
			b.chunks = new([]*[]byte)
		}
		*b.chunks = append(*b.chunks, b.cur)
	}
	if b.bud == nil {
		n = max(n, min(b.need, 1<<20))
	}
	buf := newBuf(n)
	b.part += cap(*buf)
	return buf
}

// reserveShare: a message gets its whole buffer once this share of it
// (1/16) has arrived, so that a client cannot make the server hold much
// more than it sent: an 8 MiB length prefix and one byte reserve nothing.
const reserveShare = 16

func newBuf(n int) *[]byte {
	buf := make([]byte, 0, n)
	return &buf
}

// complete queues the message just assembled, joining its chunks.
func (b *recvBuf) complete() {
	buf := b.cur
	switch {
	case buf == nil:
		buf = getMsgBuf(0)
	case b.chunks != nil && len(*b.chunks) > 0:
		size := int(binary.BigEndian.Uint32(b.hdr[1:]))
		all := getMsgBuf(size)
		for _, c := range *b.chunks {
			*all = append(*all, *c...)
		}
		*all = append(*all, *buf...)
		b.dropChunks()
		buf = all
	}
	b.msgs = append(b.msgs, inMsg{buf: buf, compressed: b.hdr[0]&flagCompressed != 0})
	b.queued += envelopeHeaderLen + len(*buf)
	b.whole += cap(*buf)
	b.part = 0
	b.cur, b.hdrN = nil, 0
}

// report tells the connection's receive buffer how much more (or, when
// negative, less) this stream's buffers hold, and of that, whole
// messages; call with mu held.
func (b *recvBuf) report(dHeld, dWhole int) (stuck bool) {
	if b.bud == nil {
		return false
	}
	return b.bud.adjust(dHeld, dWhole)
}

// partial reports the buffer held by the message being assembled and
// how much of it arrived.
func (b *recvBuf) partial() (held, got int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.part == 0 {
		return 0, 0
	}
	return b.part, int(binary.BigEndian.Uint32(b.hdr[1:])) - b.need
}

// dropPartial fails the stream with err and frees the message being
// assembled, unless it has none.
func (b *recvBuf) dropPartial(err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.part == 0 {
		return false
	}
	held := b.part
	b.dropLocked(false)
	if b.err == nil {
		b.err = err
	}
	b.wakeLocked()
	b.report(-held, 0)
	return true
}

// dropLocked lets go of the message being assembled and, with queued, of
// the whole messages waiting.
func (b *recvBuf) dropLocked(queued bool) {
	if queued {
		clear(b.msgs) // not pooled: a stream may hold thousands
		b.msgs, b.queued, b.whole = b.first[:0], 0, 0
	}
	b.dropChunks()
	b.cur, b.part, b.hdrN = nil, 0, 0
}

func (b *recvBuf) dropChunks() {
	if b.chunks != nil {
		clear(*b.chunks)
		*b.chunks = (*b.chunks)[:0]
	}
}

// release lets go of everything the stream holds, once it is over (served,
// reset, or its handler returned), and gives its share of the
// connection's receive buffer back. Later DATA is dropped (and reported,
// so that its window comes back).
func (b *recvBuf) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bud == nil {
		return
	}
	part, whole := b.part, b.whole
	b.dropLocked(true)
	if b.err == nil && !b.eof {
		b.err = Errorf(CodeCanceled, "stream closed")
	}
	b.wakeLocked()
	b.report(-part-whole, -whole)
}

// fail ends the stream with err unless it ended already.
func (b *recvBuf) fail(err error) {
	b.mu.Lock()
	if b.err == nil && !b.eof {
		b.err = err
	}
	b.wakeLocked()
	b.mu.Unlock()
}

// finish marks END_STREAM.
func (b *recvBuf) finish() {
	b.mu.Lock()
	b.eof = true
	b.wakeLocked()
	b.mu.Unlock()
}

// take returns the next message; io.EOF after the last one. credit is
// stream window to give back.
func (b *recvBuf) take(cancel <-chan struct{}) (m inMsg, credit int, err error) {
	b.mu.Lock()
	for {
		if len(b.msgs) > 0 {
			m = b.msgs[0]
			b.msgs[0] = inMsg{}
			b.msgs = b.msgs[1:]
			if len(b.msgs) == 0 {
				b.msgs = b.first[:0]
			}
			b.queued -= len(*m.buf)
			if !b.raw {
				b.queued -= envelopeHeaderLen
			}
			if b.owed > 0 && b.queued <= streamWindow {
				credit, b.owed = b.owed, 0
			}
			b.whole -= cap(*m.buf)
			b.report(-cap(*m.buf), -cap(*m.buf))
			b.mu.Unlock()
			return m, credit, nil
		}
		if b.err != nil {
			err = b.err
			b.mu.Unlock()
			return m, 0, err
		}
		if b.eof {
			err = io.EOF
			if b.hdrN > 0 && !b.raw {
				err = Errorf(CodeInternal, "truncated message header: the stream ended inside the 5-byte prefix")
				if b.hdrN == envelopeHeaderLen {
					size := binary.BigEndian.Uint32(b.hdr[1:])
					err = Errorf(CodeInternal, "truncated message: the prefix announced %d bytes, the stream ended after %d",
						size, int(size)-b.need)
				}
			}
			b.mu.Unlock()
			return m, 0, err
		}
		wake := b.waitLocked()
		b.mu.Unlock()
		select {
		case <-wake:
		case <-cancel:
			return m, 0, errCanceled
		}
		b.mu.Lock()
	}
}

// peerDone reports whether the peer ended its side with END_STREAM.
func (b *recvBuf) peerDone() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof
}

// ended reports whether END_STREAM came or the stream failed.
func (b *recvBuf) ended() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof || b.err != nil
}

// decode unmarshals a received message with codec, inflating it first.
func decodeMsg(codec Codec, m inMsg, encoding string, maxRecv int, into any) error {
	defer putMsgBuf(m.buf)
	data := *m.buf
	if m.compressed {
		if encoding == "" || encoding == encodingIdentity {
			return Errorf(CodeInternal, "compressed message without grpc-encoding")
		}
		out, err := gzipDecompress(data, maxRecv)
		if err != nil {
			return err
		}
		data = out
	}
	if err := codec.Unmarshal(data, into); err != nil {
		return Errorf(CodeInternal, "unmarshal %T: %v", into, err)
	}
	return nil
}
