package triple

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The client side of the HTTP/2 transport. A call writes its HEADERS (and
// for unary calls its one DATA frame) itself; the reader goroutine parses
// the response and wakes the call once, when it is complete.

// errRefused marks a stream the server never processed: safe to retry.
var errRefused = errors.New("stream refused")

// initialMaxStreams bounds a client's streams before the server's SETTINGS.
const initialMaxStreams = 100

type h2ClientConn struct {
	h2Conn
	cc *ClientConn

	// Guarded by h2Conn.mu.
	nextID     uint32
	draining   bool
	maxStreams uint32
	active     int
	slotWake   chan struct{}
}

func newH2ClientConn(cc *ClientConn, nc net.Conn) (*h2ClientConn, error) {
	// Until the server's SETTINGS say otherwise, at most 100 streams at
	// once: the lowest limit RFC 9113 recommends a server to allow, and
	// what grpc-go assumes too. More would be refused by a server with a
	// limit.
	c := &h2ClientConn{cc: cc, nextID: 1, maxStreams: initialMaxStreams}
	c.init(nc, bufio.NewReaderSize(nc, ioBufSize), true, cc.cfg.keepalive)
	if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
		return nil, err
	}
	if err := c.writeSettings(c.recvWin, http2.Setting{ID: http2.SettingEnablePush, Val: 0}); err != nil {
		return nil, err
	}
	go c.readLoop()
	go c.writeLoop()
	if c.keepalive > 0 {
		go c.keepaliveLoop()
	}
	return c, nil
}

// usable reports whether new calls may start here.
func (c *h2ClientConn) usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.draining && !c.isClosed()
}

// drain stops new calls and closes the connection when the last one ends.
func (c *h2ClientConn) drain() {
	c.mu.Lock()
	c.draining = true
	idle := c.active == 0
	c.mu.Unlock()
	if idle {
		c.queue(ctrlFrame{kind: ctrlClose})
	}
}

func (c *h2ClientConn) setMaxStreams(n uint32) {
	c.mu.Lock()
	c.maxStreams = n
	c.wakeSlotsLocked()
	c.mu.Unlock()
}

func (c *h2ClientConn) wakeSlotsLocked() {
	if c.slotWake != nil {
		close(c.slotWake)
		c.slotWake = nil
	}
}

// acquire takes a stream slot within the server's MAX_CONCURRENT_STREAMS.
func (c *h2ClientConn) acquire(cs *clientStream) error {
	var expire <-chan time.Time
	c.mu.Lock()
	for uint64(c.active) >= uint64(c.maxStreams) {
		if c.draining || c.isClosed() {
			c.mu.Unlock()
			return errRefused
		}
		if c.slotWake == nil {
			c.slotWake = make(chan struct{})
		}
		wake := c.slotWake
		c.mu.Unlock()
		if expire == nil && !cs.deadline.IsZero() {
			t := time.NewTimer(time.Until(cs.deadline))
			defer t.Stop()
			expire = t.C
		}
		select {
		case <-wake:
		case <-c.closed:
		case <-cs.ctx.Done():
			return cs.ctx.Err()
		case <-expire:
			return errDeadline()
		}
		c.mu.Lock()
	}
	c.active++
	c.mu.Unlock()
	return nil
}

// release gives back the slot of a stream; remove says it was registered.
func (c *h2ClientConn) release(cs *clientStream) {
	c.mu.Lock()
	if cs.registered {
		if _, ok := c.streams[cs.id]; !ok {
			c.mu.Unlock()
			return
		}
		delete(c.streams, cs.id)
	} else if cs.released {
		c.mu.Unlock()
		return
	}
	cs.released = true
	c.active--
	c.wakeSlotsLocked()
	closeNow := c.draining && c.active == 0
	c.mu.Unlock()
	if closeNow {
		c.queue(ctrlFrame{kind: ctrlClose})
	}
}

// open starts cs: a stream id, the request headers and, for unary calls,
// the request message with END_STREAM.
func (c *h2ClientConn) open(cs *clientStream, method string, cfg *callConfig, data []byte) error {
	if err := c.acquire(cs); err != nil {
		cs.refused.Store(errors.Is(err, errRefused))
		return err
	}
	var refused bool
	sent := 0
	err := c.write(func() error {
		c.mu.Lock()
		if c.draining || c.nextID > maxStreamID {
			c.mu.Unlock()
			refused = true
			return nil
		}
		cs.id = c.nextID
		c.nextID += 2
		if c.nextID > maxStreamID {
			c.draining = true
		}
		c.fcMu.Lock()
		cs.sendWin = c.peerInitWin
		c.fcMu.Unlock()
		c.streams[cs.id] = &cs.h2Stream
		cs.registered = true
		c.mu.Unlock()
		if err := cs.writeRequestHeaders(method, cfg, cs.unary && len(data) == 0); err != nil {
			return err
		}
		if cs.unary && len(data) > 0 {
			sent = c.reserveNow(&cs.h2Stream, len(data))
			if sent > 0 {
				return c.fr.WriteData(cs.id, sent == len(data), data[:sent])
			}
		}
		return nil
	})
	if refused {
		cs.refused.Store(true)
		c.release(cs)
		return errRefused
	}
	if err != nil {
		c.release(cs)
		return err
	}
	if !cs.deadline.IsZero() {
		cs.timer = startCallTimer(cs)
	}
	if cs.unary && sent < len(data) {
		err := c.sendData(&cs.h2Stream, nil, data[sent:], true, nil, cs.ctx.Done())
		if err != nil && !errors.Is(err, errStreamDone) && !errors.Is(err, errCanceled) {
			// A stream that ended or a call given up: the status tells.
			return err
		}
	}
	return nil
}

// reserveNow takes what send window there is, without waiting.
func (c *h2Conn) reserveNow(st *h2Stream, want int) int {
	c.fcMu.Lock()
	defer c.fcMu.Unlock()
	n := int64(min(want, c.peerFrame, maxDataChunk))
	n = max(min(n, c.sendWin, st.sendWin), 0)
	c.sendWin -= n
	st.sendWin -= n
	return int(n)
}

func (c *h2ClientConn) readLoop() {
	var err error
	sawSettings := false
	for err == nil {
		var f http2.Frame
		if f, err = c.readFrame(); err == nil {
			switch f := f.(type) {
			case *http2.HeadersFrame:
				err = c.onHeaders(f)
			case *http2.DataFrame:
				err = c.onData(f)
			case *http2.RSTStreamFrame:
				c.onRST(f)
			case *http2.SettingsFrame:
				if _, ok := f.Value(http2.SettingMaxConcurrentStreams); !ok && !f.IsAck() && !sawSettings {
					c.setMaxStreams(math.MaxUint32) // no limit
				}
				sawSettings = sawSettings || !f.IsAck()
				err = c.onSettings(f, c.setMaxStreams)
			case *http2.PingFrame:
				err = c.onPing(f)
			case *http2.WindowUpdateFrame:
				err = c.onWindowUpdate(f)
			case *http2.GoAwayFrame:
				c.onGoAway(f)
			case *http2.PushPromiseFrame:
				err = http2.ConnectionError(http2.ErrCodeProtocol)
			}
		}
		if err == nil {
			continue
		}
		// Declared only on an error: errors.As makes se escape, which cost
		// an allocation per frame read.
		var se http2.StreamError
		if errors.As(err, &se) {
			c.queue(ctrlFrame{kind: ctrlRST, id: se.StreamID, code: se.Code})
			if st := c.stream(se.StreamID); st != nil {
				c.endStream(st.cs, Errorf(CodeInternal, "stream error: %v", se))
			}
			err = nil
		}
	}
	if code, ok := connErrCode(err); ok {
		c.connError(0, code, err)
	}
	c.teardown(err)
}

func (c *h2ClientConn) teardown(err error) {
	c.close(err)
	c.mu.Lock()
	c.draining = true
	streams := make([]*clientStream, 0, len(c.streams))
	for _, st := range c.streams {
		streams = append(streams, st.cs)
	}
	c.mu.Unlock()
	why := c.closeErr
	if errors.Is(why, io.EOF) {
		why = errors.New("the server closed the connection")
	}
	for _, cs := range streams {
		c.endStream(cs, &Error{code: CodeUnavailable, msg: "connection closed: " + why.Error(), cause: why})
	}
	c.cc.mu.Lock()
	if c.cc.cur == c {
		c.cc.cur = nil
	}
	c.cc.mu.Unlock()
}

// endStream fails cs with err (unless it has ended) and forgets it.
func (c *h2ClientConn) endStream(cs *clientStream, err *Error) {
	c.stopSending(&cs.h2Stream)
	cs.recv.fail(err)
	c.release(cs)
}

func (c *h2ClientConn) onGoAway(f *http2.GoAwayFrame) {
	last := f.LastStreamID
	c.mu.Lock()
	c.draining = true
	var refused []*clientStream
	for id, st := range c.streams {
		if id > last {
			refused = append(refused, st.cs)
		}
	}
	idle := c.active == 0
	c.mu.Unlock()
	for _, cs := range refused {
		cs.refused.Store(true)
		c.endStream(cs, Errorf(CodeUnavailable, "the server is going away (GOAWAY %v) and did not process the call", f.ErrCode))
	}
	if idle {
		c.queue(ctrlFrame{kind: ctrlClose})
	}
}

func (c *h2ClientConn) onRST(f *http2.RSTStreamFrame) {
	st := c.stream(f.StreamID)
	if st == nil {
		return
	}
	var e *Error
	switch f.ErrCode {
	case http2.ErrCodeRefusedStream:
		st.cs.refused.Store(true)
		e = Errorf(CodeUnavailable, "the server refused the stream")
	case http2.ErrCodeCancel:
		e = Errorf(CodeCanceled, "the server canceled the stream")
		// A server whose copy of the deadline fired resets the stream
		// (grpc-go does) and that reset can arrive before this side's own
		// timer runs: once the caller's deadline has passed, that is what
		// the reset means.
		if d, ok := st.cs.deadlineOf(); ok && !d.After(time.Now()) {
			e = Errorf(CodeDeadlineExceeded, "deadline exceeded (the server reset the stream when it expired)")
		}
	case http2.ErrCodeEnhanceYourCalm:
		e = Errorf(CodeResourceExhausted, "the server reset the stream: %v", f.ErrCode)
	case http2.ErrCodeInadequateSecurity:
		e = Errorf(CodePermissionDenied, "the server reset the stream: %v", f.ErrCode)
	default:
		e = Errorf(CodeInternal, "the server reset the stream: %v", f.ErrCode)
	}
	c.endStream(st.cs, e)
}

func (c *h2ClientConn) onData(f *http2.DataFrame) error {
	id, n := f.StreamID, int(f.Length)
	if err := c.onDataFlow(n); err != nil {
		return err
	}
	st := c.stream(id)
	if st == nil {
		return nil
	}
	cs := st.cs
	data, end := f.Data(), f.StreamEnded()
	if end && !cs.triple {
		cs.recv.mu.Lock()
		cs.status = Errorf(CodeInternal, "the server closed the stream without a grpc-status trailer")
		cs.recv.mu.Unlock()
	}
	credit, failed, _ := st.recv.put(data, end)
	credit += n - len(data)
	if failed && !end {
		c.queue(ctrlFrame{kind: ctrlRST, id: id, code: http2.ErrCodeCancel})
	}
	if end || failed {
		c.stopSending(&cs.h2Stream)
		c.release(cs)
		return nil
	}
	cs.credit += credit
	if cs.credit >= streamWindow/4 {
		c.streamCredit(st, cs.credit)
		cs.credit = 0
	}
	return nil
}

func (c *h2ClientConn) onHeaders(f *http2.HeadersFrame) error {
	id, end := f.StreamID, f.StreamEnded()
	if err := c.readHeaderBlock(f); err != nil {
		return err
	}
	st := c.stream(id)
	if st == nil {
		return nil // a call that gave up
	}
	cs := st.cs
	b := &cs.recv
	b.mu.Lock()
	if cs.triple {
		cs.onTripleHeaders(c.fields, end)
		b.mu.Unlock()
		if end {
			c.stopSending(&cs.h2Stream)
			c.release(cs)
		}
		return nil
	}
	var fail *Error
	if !cs.gotHeaders {
		cs.gotHeaders = true
		cs.hdrMeta = appFields(c.fields)
		status, ct := "", ""
		for _, hf := range c.fields {
			switch hf.Name {
			case ":status":
				status = hf.Value
			case "content-type":
				ct = hf.Value
			case "grpc-encoding":
				cs.encoding = hf.Value
			case "tri-exception-code":
				cs.exception = hf.Value
			}
		}
		switch {
		case status != "200":
			code, _ := strconv.Atoi(status)
			fail = Errorf(codeFromHTTP(code), "HTTP status %d (%s) from the server", code, ct)
			if e := statusFromFields(c.fields); e != nil && e.code != CodeOK {
				fail = e
			}
		case !strings.HasPrefix(ct, "application/grpc"):
			fail = Errorf(CodeUnknown, "unexpected content type %q from the server: not a gRPC/Triple endpoint?", ct)
		case end: // trailers-only
			cs.status = statusFromFields(c.fields)
			if cs.status == nil {
				cs.status = Errorf(CodeInternal, "the server closed the stream without a grpc-status trailer")
			}
			cs.trailersOnly = true
		}
	} else {
		if cs.exception == "" {
			for _, hf := range c.fields {
				if hf.Name == "tri-exception-code" {
					cs.exception = hf.Value
				}
			}
		}
		cs.trlMeta = appFields(c.fields)
		cs.status = statusFromFields(c.fields)
		if cs.status == nil {
			cs.status = Errorf(CodeInternal, "the server closed the stream without a grpc-status trailer")
		}
		if !end {
			fail = Errorf(CodeInternal, "the server sent trailers without END_STREAM")
		}
	}
	if cs.status != nil && cs.status.code == CodeOK {
		cs.status = nil
	}
	if fail == nil && end {
		b.eof = true
	}
	b.wakeLocked()
	b.mu.Unlock()
	if fail != nil {
		if !end {
			c.queue(ctrlFrame{kind: ctrlRST, id: id, code: http2.ErrCodeCancel})
		}
		c.endStream(cs, fail)
		return nil
	}
	if end {
		c.stopSending(&cs.h2Stream)
		c.release(cs)
	}
	return nil
}

// appFields copies the application's fields of a header block, nil when
// there are none.
func appFields(fields []hpack.HeaderField) []hpack.HeaderField {
	var out []hpack.HeaderField
	for _, f := range fields {
		if f.Name == "tri-header-convert" || !protocolHeader(f.Name) {
			if out == nil {
				out = make([]hpack.HeaderField, 0, len(fields))
			}
			out = append(out, f)
		}
	}
	return out
}

// statusOK is what statusFromFields returns for grpc-status 0, shared by
// every call (one allocation less per call): never modify it.
var statusOK = &Error{code: CodeOK}

// statusFromFields reads grpc-status, grpc-message and details; nil when
// there is no grpc-status. An OK status is the shared statusOK.
func statusFromFields(fields []hpack.HeaderField) *Error {
	var status, msg, details string
	for _, f := range fields {
		switch f.Name {
		case "grpc-status":
			status = f.Value
		case "grpc-message":
			msg = f.Value
		case "grpc-status-details-bin":
			details = f.Value
		}
	}
	if status == "" {
		return nil
	}
	if status == "0" {
		return statusOK
	}
	code, err := strconv.ParseUint(status, 10, 32)
	if err != nil {
		return Errorf(CodeInternal, "malformed grpc-status %q", status)
	}
	e := &Error{code: Code(code), msg: decodeGRPCMessage(msg)}
	if details != "" {
		if b, err := decodeBinHeader(details); err == nil {
			var st spb.Status
			if proto.Unmarshal(b, &st) == nil {
				e.details = st.GetDetails()
			}
		}
	}
	return e
}

// clientStream is one call on the client, unary or streaming.
type clientStream struct {
	h2Stream
	c        *h2ClientConn
	ctx      context.Context
	cancel   context.CancelFunc
	stop     func() bool
	deadline time.Time  // the call's own bound (WithTimeout, WithDeadline), when earlier than ctx's
	timer    *callTimer // armed at deadline once the stream is open
	unary    bool
	compress bool
	triple   bool // ProtocolTriple: a bare body, no envelope, no grpc-status
	credit   int  // reader goroutine only

	registered bool // guarded by c.mu
	released   bool // guarded by c.mu
	refused    atomic.Bool

	// Response state, guarded by recv.mu.
	gotHeaders   bool
	trailersOnly bool
	encoding     string
	exception    string // tri-exception-code (wrapper mode)
	httpStatus   int    // ProtocolTriple
	contentType  string // ProtocolTriple
	hdrMeta      []hpack.HeaderField
	trlMeta      []hpack.HeaderField
	status       *Error // final status; nil is OK

	sendMu     sync.Mutex
	sendClosed bool
	finishOnce sync.Once
}

func newClientStream(c *h2ClientConn, ctx context.Context, unary, compress bool) *clientStream { //nolint:revive // ctx second: c is the receiver-like owner
	cs := &clientStream{c: c, ctx: ctx, unary: unary, compress: compress}
	cs.cs = cs
	cs.recv.init(c.cc.cfg.maxRecv)
	return cs
}

func (cs *clientStream) writeRequestHeaders(method string, cfg *callConfig, endStream bool) error {
	if cs.triple {
		return cs.writeTripleHeaders(method, cfg, endStream)
	}
	c, cc := cs.c, cs.c.cc
	c.hf(":method", "POST")
	c.hf(":scheme", cc.scheme)
	c.hf(":path", method)
	c.hf(":authority", cc.host)
	c.hf("content-type", "application/grpc+proto")
	c.hf("te", "trailers")
	c.hf("user-agent", cc.cfg.userAgent)
	c.hf("grpc-accept-encoding", encodingGzip)
	if dl, ok := cs.deadlineOf(); ok {
		c.hfNoIndex("grpc-timeout", encodeTimeout(time.Until(dl)))
	}
	if cs.compress {
		c.hf("grpc-encoding", encodingGzip)
	}
	return cs.endCallHeaders(cfg, endStream)
}

// endCallHeaders adds what both flavours send after their own headers:
// Dubbo's service group and version, the consumer's application name and
// the call's attachments; then it ends the header block.
func (cs *clientStream) endCallHeaders(cfg *callConfig, endStream bool) error {
	c := cs.c
	if cfg.group != "" {
		c.hf("tri-service-group", cfg.group)
	}
	if cfg.version != "" {
		c.hf("tri-service-version", cfg.version)
	}
	if app := c.cc.cfg.application; app != "" {
		c.hf("tri-consumer-appname", app)
	}
	if md, ok := FromOutgoingContext(cs.ctx); ok {
		encodeMetadata(md, c.hf)
	}
	for _, f := range cfg.requestHeaders {
		c.hf(f.Name, f.Value)
	}
	return c.endHeaders(cs.id, endStream)
}

// sendFailure turns an error of opening or sending into a status.
func (cs *clientStream) sendFailure(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if cs.ctx.Err() != nil {
		return transportError(cs.ctx, cs.ctx.Err())
	}
	if errors.Is(err, errRefused) {
		return Errorf(CodeUnavailable, "the connection is going away: %v", err)
	}
	if errors.Is(err, errStreamDone) {
		// The call ended while we sent: its status says why.
		cs.recv.mu.Lock()
		st := cs.recv.err
		cs.recv.mu.Unlock()
		if st != nil {
			return st
		}
	}
	return &Error{code: CodeUnavailable, msg: "send request: " + err.Error(), cause: err}
}

// abort cancels the call: RST_STREAM to the server, the context's error
// to the caller.
func (cs *clientStream) abort(err error) { cs.reset(transportError(cs.ctx, err)) }

// reset ends the call with e, resetting the stream if the server has it.
func (cs *clientStream) reset(e *Error) {
	c := cs.c
	c.mu.Lock()
	live := false
	if cs.registered {
		_, live = c.streams[cs.id]
	}
	c.mu.Unlock()
	if live {
		c.queue(ctrlFrame{kind: ctrlRST, id: cs.id, code: http2.ErrCodeCancel})
	}
	c.endStream(cs, e)
}

// next takes the next message; io.EOF at a clean end.
func (cs *clientStream) next() (inMsg, error) {
	m, credit, err := cs.recv.take(cs.ctx.Done())
	if err == nil {
		cs.c.streamCredit(&cs.h2Stream, credit)
		return m, nil
	}
	if errors.Is(err, errCanceled) {
		cs.abort(cs.ctx.Err())
		return m, transportError(cs.ctx, cs.ctx.Err())
	}
	if errors.Is(err, io.EOF) {
		cs.recv.mu.Lock()
		st := cs.status
		cs.recv.mu.Unlock()
		if st != nil {
			st.meta = cs.errorMeta()
			return m, st
		}
		return m, io.EOF
	}
	return m, err
}

func (cs *clientStream) errorMeta() Metadata {
	cs.recv.mu.Lock()
	defer cs.recv.mu.Unlock()
	if cs.trailersOnly {
		return readMetadataFields(cs.hdrMeta)
	}
	return readMetadataFields(cs.trlMeta)
}

func (cs *clientStream) decode(m inMsg, into any) error {
	cs.recv.mu.Lock()
	enc := cs.encoding
	cs.recv.mu.Unlock()
	return decodeMsg(protoCodec{}, m, enc, cs.recv.maxRecv, into)
}

// await finishes a unary call: the one response and the status.
func (cs *clientStream) await(reply any, cfg *callConfig) error {
	defer cs.store(cfg)
	m, err := cs.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Errorf(CodeInternal, "unary response without a message")
		}
		return err
	}
	if err := cs.decode(m, reply); err != nil {
		cs.abort(err)
		return err
	}
	m, err = cs.next()
	if err == nil {
		putMsgBuf(m.buf)
		cs.abort(errors.New("more than one response"))
		return Errorf(CodeInternal, "unary response with more than one message")
	}
	if errors.Is(err, io.EOF) {
		cs.readException(reply)
		return nil
	}
	return err
}

// readException stores tri-exception-code in a wrapper-mode reply.
func (cs *clientStream) readException(reply any) {
	w, ok := reply.(*WrapperResponse)
	if !ok || w == nil {
		return
	}
	cs.recv.mu.Lock()
	v := strings.TrimSpace(cs.exception)
	cs.recv.mu.Unlock()
	if code, err := strconv.Atoi(v); err == nil && code != 0 {
		w.ExceptionCode = code
	}
}

func (cs *clientStream) store(cfg *callConfig) {
	if cfg.header == nil && cfg.trailer == nil && cfg.headerValue == nil {
		return
	}
	cs.recv.mu.Lock()
	defer cs.recv.mu.Unlock()
	if hv := cfg.headerValue; hv != nil {
		hv.Value = ""
		for _, f := range cs.hdrMeta {
			if f.Name == hv.Key {
				hv.Value = f.Value
				break
			}
		}
	}
	if cfg.header != nil {
		*cfg.header = readMetadataFields(cs.hdrMeta)
	}
	if cfg.trailer != nil {
		*cfg.trailer = readMetadataFields(cs.trlMeta)
	}
}

func (cc *ClientConn) newStream(ctx context.Context, desc *StreamDesc, method string, opts ...CallOption) (ClientStream, error) {
	cfg := cc.callConfigOf(opts)
	if !strings.HasPrefix(method, "/") {
		return nil, Errorf(CodeInternal, "method %q must look like /service/Method", method)
	}
	ctx, cancel := context.WithCancel(ctx)
	if dl := cfg.ownDeadline(ctx); !dl.IsZero() {
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, dl)
		outer := cancel
		cancel = func() { stop(); outer() }
	}
	compress := cc.cfg.compress || cfg.compress
	var cs *clientStream
	for attempt := 0; ; attempt++ {
		c, err := cc.getConn(ctx)
		if err != nil {
			cancel()
			return nil, err
		}
		cs = newClientStream(c, ctx, false, compress)
		cs.cancel = cancel
		err = c.open(cs, method, &cfg, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, errRefused) || attempt == 3 {
			cancel()
			return nil, cs.sendFailure(err)
		}
	}
	_ = desc
	cs.stop = context.AfterFunc(ctx, func() { cs.abort(ctx.Err()) })
	return cs, nil
}

func (cs *clientStream) Context() context.Context { return cs.ctx }

func (cs *clientStream) Header() (Metadata, error) {
	b := &cs.recv
	b.mu.Lock()
	for !cs.gotHeaders && !b.eof && b.err == nil {
		wake := b.waitLocked()
		b.mu.Unlock()
		select {
		case <-wake:
		case <-cs.ctx.Done():
			return nil, transportError(cs.ctx, cs.ctx.Err())
		}
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	if !cs.gotHeaders || cs.trailersOnly && cs.status != nil {
		if b.err != nil {
			return nil, b.err
		}
		if cs.status != nil {
			return nil, cs.status
		}
	}
	return readMetadataFields(cs.hdrMeta), nil
}

func (cs *clientStream) Trailer() Metadata {
	b := &cs.recv
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.eof && b.err == nil {
		return nil
	}
	if cs.trailersOnly {
		return readMetadataFields(cs.hdrMeta)
	}
	return readMetadataFields(cs.trlMeta)
}

func (cs *clientStream) SendMsg(m any) error {
	cs.sendMu.Lock()
	defer cs.sendMu.Unlock()
	if cs.sendClosed {
		return Errorf(CodeInternal, "SendMsg after CloseSend")
	}
	buf, err := marshalEnvelope(protoCodec{}, m, cs.compress, cs.c.cc.cfg.maxSend)
	if err != nil {
		return err
	}
	defer putBuf(buf)
	if err := cs.c.sendData(&cs.h2Stream, nil, buf.Bytes(), false, nil, cs.ctx.Done()); err != nil {
		// The stream is over: the reason comes from RecvMsg, as in grpc-go.
		return io.EOF
	}
	return nil
}

func (cs *clientStream) CloseSend() error {
	cs.sendMu.Lock()
	defer cs.sendMu.Unlock()
	if cs.sendClosed {
		return nil
	}
	cs.sendClosed = true
	if cs.recv.ended() {
		return nil
	}
	_ = cs.c.sendData(&cs.h2Stream, nil, nil, true, nil, nil)
	return nil
}

func (cs *clientStream) RecvMsg(m any) error {
	msg, err := cs.next()
	if err != nil {
		cs.finish()
		return err
	}
	if err := cs.decode(msg, m); err != nil {
		cs.abort(err)
		cs.finish()
		return err
	}
	return nil
}

// finish releases a streaming call once its status is known.
func (cs *clientStream) finish() {
	cs.finishOnce.Do(func() {
		if cs.stop != nil {
			cs.stop()
		}
		cs.cancel()
	})
}
