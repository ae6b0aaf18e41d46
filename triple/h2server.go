package triple

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The server side of the HTTP/2 transport: one h2ServerConn per
// connection, one goroutine per call (started once a unary request is
// complete, or at the headers of a streaming call; reused for the
// connection's next call once it is done).

var drainPing = [8]byte{'s', 'h', 'o', 'a', 'l', 'g', 'o', 'a'}

type h2ServerConn struct {
	h2Conn
	srv    *Server
	ctx    context.Context
	cancel context.CancelFunc
	maxID  uint32 // highest client stream id seen; guarded by h2Conn.mu
	client Peer   // set before the first stream
	// clientEnded: the streams the client ended last; reader goroutine only.
	clientEnded endedStreams

	draining   bool // final GOAWAY sent; guarded by h2Conn.mu
	drainTimer *time.Timer

	// bud is the connection's receive buffer and window.
	bud connBudget

	// Limits, guarded by h2Conn.mu. unserved counts down the streams the
	// client may open and not let the server serve (refused past
	// MAX_CONCURRENT_STREAMS, or reset before any response) beyond those
	// it let finish; at zero the connection ends with ENHANCE_YOUR_CALM.
	maxStreams  uint32
	acked       bool // the client acknowledged our SETTINGS: refusals count
	unserved    int
	maxUnserved int
	idleSince   time.Time
	idleTimer   *time.Timer

	// work hands a call to an idle handler goroutine (see worker).
	work        chan *h2ServerStream
	idleWorkers atomic.Int32
}

// errResetFlood ends a connection whose client opens streams it does not
// let the server serve: rapid reset (HEADERS then RST_STREAM) or streams
// past MAX_CONCURRENT_STREAMS.
var errResetFlood = fmt.Errorf("triple: the client reset or overflowed far more streams than it let finish: %w",
	http2.ConnectionError(http2.ErrCodeEnhanceYourCalm))

// serveH2 runs one HTTP/2 connection whose preface is next in br.
func (s *Server) serveH2(nc net.Conn, br *bufio.Reader) {
	sc := &h2ServerConn{srv: s, maxStreams: s.cfg.maxStreams, client: connPeer(nc), work: make(chan *h2ServerStream)}
	sc.maxUnserved = int(min(2*uint64(sc.maxStreams), maxUnservedCap))
	sc.unserved = sc.maxUnserved
	sc.init(nc, br, false, s.cfg.keepalive)
	sc.bud.init(&sc.h2Conn, int64(s.cfg.maxConnBuffer))
	sc.ctx, sc.cancel = context.WithCancel(context.Background())
	defer sc.cancel()
	if !s.trackConn(sc, true) {
		_ = nc.Close()
		return
	}
	defer s.trackConn(sc, false)
	err := sc.handshake(br)
	if err == nil {
		go sc.writeLoop()
		if sc.keepalive > 0 {
			go sc.keepaliveLoop()
		}
		if d := s.cfg.idleTimeout; d > 0 {
			sc.mu.Lock()
			sc.idleSince = time.Now()
			sc.idleTimer = time.AfterFunc(d, sc.checkIdle)
			sc.mu.Unlock()
		}
		err = sc.readLoop()
	}
	sc.teardown(err)
}

// maxUnservedCap bounds the unserved-stream budget when
// MAX_CONCURRENT_STREAMS is very large.
const maxUnservedCap = 100_000

// handshake reads the client preface and its first SETTINGS within the
// handshake timeout. Anything else there is a PROTOCOL_ERROR, and a
// client too slow to send them gets a GOAWAY too.
func (sc *h2ServerConn) handshake(br *bufio.Reader) error {
	d := sc.srv.cfg.handshakeTimeout
	_ = sc.nc.SetReadDeadline(time.Now().Add(d))
	defer func() { _ = sc.nc.SetReadDeadline(time.Time{}) }()
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(br, preface[:]); err != nil {
		return sc.handshakeFailed(err)
	}
	if string(preface[:]) != http2.ClientPreface {
		sc.connError(0, http2.ErrCodeProtocol, errors.New("triple: bad HTTP/2 client preface"))
		return errConnClosed
	}
	if err := sc.writeSettings(sc.bud.win, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: sc.maxStreams}); err != nil {
		return err
	}
	f, err := sc.readFrame()
	if err != nil {
		return sc.handshakeFailed(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		sc.connError(0, http2.ErrCodeProtocol, errors.New("triple: the client did not start with SETTINGS"))
		return errConnClosed
	}
	return sc.onSettings(sf, nil)
}

// handshakeFailed answers a failed read of the connection preface: a
// timeout with GOAWAY NO_ERROR, bytes that are not a SETTINGS frame with
// GOAWAY PROTOCOL_ERROR. A peer that went away gets nothing.
func (sc *h2ServerConn) handshakeFailed(err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		sc.connError(0, http2.ErrCodeNo, fmt.Errorf("triple: no HTTP/2 preface and SETTINGS within %v", sc.srv.cfg.handshakeTimeout))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne), errors.Is(err, net.ErrClosed):
		return err
	default:
		sc.connError(0, http2.ErrCodeProtocol, fmt.Errorf("triple: invalid HTTP/2 connection preface: %w", err))
	}
	return errConnClosed
}

// checkIdle ends the connection gracefully once it has had no stream for
// the idle timeout.
func (sc *h2ServerConn) checkIdle() {
	d := sc.srv.cfg.idleTimeout
	sc.mu.Lock()
	if sc.draining || sc.isClosed() {
		sc.mu.Unlock()
		return
	}
	wait := d
	if len(sc.streams) == 0 {
		idle := time.Since(sc.idleSince)
		if idle >= d {
			sc.mu.Unlock()
			sc.finalGoAway()
			return
		}
		wait = d - idle
	}
	sc.idleTimer.Reset(wait)
	sc.mu.Unlock()
}

func (sc *h2ServerConn) lastID() uint32 {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.maxID
}

func (sc *h2ServerConn) readLoop() error {
	for {
		f, err := sc.readFrame()
		if err == nil {
			switch f := f.(type) {
			case *http2.HeadersFrame:
				err = sc.onHeaders(f)
			case *http2.DataFrame:
				err = sc.onData(f)
			case *http2.RSTStreamFrame:
				err = sc.onRST(f)
			case *http2.SettingsFrame:
				if f.IsAck() {
					sc.mu.Lock()
					sc.acked = true
					sc.mu.Unlock()
				}
				err = sc.onSettings(f, nil)
			case *http2.PingFrame:
				if f.IsAck() && f.Data == drainPing {
					sc.finalGoAway()
				}
				err = sc.onPing(f)
			case *http2.WindowUpdateFrame:
				err = errIdleStream
				if !sc.idleStream(f.StreamID) {
					err = sc.onWindowUpdate(f)
				}
			case *http2.PriorityFrame:
				err = onPriority(f)
			case *http2.PushPromiseFrame:
				err = http2.ConnectionError(http2.ErrCodeProtocol)
			}
		}
		if err == nil {
			continue
		}
		var se http2.StreamError
		if errors.As(err, &se) {
			if st := sc.stream(se.StreamID); st != nil {
				sc.resetStream(st, Errorf(CodeInternal, "stream error: %v", se))
			}
			if err = sc.queueReply(ctrlFrame{kind: ctrlRST, id: se.StreamID, code: se.Code}); err == nil {
				continue
			}
		}
		if code, ok := connErrCode(err); ok {
			sc.logConnError(code, err)
			sc.connError(sc.lastID(), code, err)
		}
		return err
	}
}

// logConnError reports a connection the server ends for its client's
// sake: at Warn when the client overloads the server, else at Debug.
func (sc *h2ServerConn) logConnError(code http2.ErrCode, err error) {
	level := slog.LevelDebug
	if code == http2.ErrCodeEnhanceYourCalm {
		level = slog.LevelWarn
	}
	sc.srv.cfg.logger.Log(sc.ctx, level, "triple: ending HTTP/2 connection", "remote", sc.nc.RemoteAddr().String(), "code", code.String(), "err", err)
}

func (sc *h2ServerConn) teardown(err error) {
	if err == nil {
		err = errConnClosed
	}
	sc.close(err)
	sc.cancel()
	sc.mu.Lock()
	if sc.drainTimer != nil {
		sc.drainTimer.Stop()
	}
	if sc.idleTimer != nil {
		sc.idleTimer.Stop()
	}
	streams := make([]*h2Stream, 0, len(sc.streams))
	for _, st := range sc.streams {
		streams = append(streams, st)
	}
	sc.mu.Unlock()
	for _, st := range streams {
		sc.stopSending(st)
		st.recv.fail(Errorf(CodeUnavailable, "connection closed: %v", err))
		st.recv.release()
	}
}

// reqHeaders is what the server reads from a request's header block.
type reqHeaders struct {
	method, path, contentType, timeout, triTimeout, encoding string
	meta                                                     []hpack.HeaderField
	// hasTimeout: the request carried grpc-timeout, even an empty one
	// (which is malformed, as grpc-go reads it).
	hasTimeout bool
}

func (sc *h2ServerConn) parseRequest(rh *reqHeaders, ci *CallInfo) {
	for _, f := range sc.fields {
		switch f.Name {
		case ":method":
			rh.method = f.Value
		case ":path":
			rh.path = f.Value
		case "content-type":
			rh.contentType = f.Value
		case "grpc-timeout":
			rh.timeout, rh.hasTimeout = f.Value, true
		case "tri-service-timeout":
			rh.triTimeout = f.Value
		case "grpc-encoding":
			rh.encoding = f.Value
		case "tri-service-group":
			ci.Group = f.Value
		case "tri-service-version":
			ci.Version = f.Value
		case "tri-consumer-appname":
			ci.Application = f.Value
		case ":authority":
			ci.Authority = f.Value
		case "tri-header-convert":
			rh.meta = append(rh.meta, f)
		default:
			if !protocolHeader(f.Name) {
				rh.meta = append(rh.meta, f)
			}
		}
	}
}

func (sc *h2ServerConn) onHeaders(f *http2.HeadersFrame) error {
	id, end := f.StreamID, f.StreamEnded()
	if err := sc.readHeaderBlock(f); err != nil {
		if errors.Is(err, errHeaderFlood) {
			// The stream fails, and the GOAWAY names it as handled so that
			// the client does not send it again.
			sc.mu.Lock()
			if id%2 == 1 && id > sc.maxID {
				sc.maxID = id
			}
			sc.mu.Unlock()
			sc.logConnError(http2.ErrCodeEnhanceYourCalm, err)
			sc.connError(sc.lastID(), http2.ErrCodeEnhanceYourCalm, err, ctrlFrame{kind: ctrlRST, id: id, code: http2.ErrCodeEnhanceYourCalm})
			return errConnClosed
		}
		return err
	}
	if st := sc.stream(id); st != nil {
		return sc.onTrailers(st.ss, f)
	}
	contentLength, malformed := sc.checkOpen(f)
	sc.mu.Lock()
	if id%2 == 0 || id <= sc.maxID {
		sc.mu.Unlock()
		return sc.headersOnClosed(id)
	}
	sc.maxID = id
	if malformed != nil {
		// Reset, not served: it counts as a refused or reset stream.
		ok := sc.unservedLocked()
		sc.mu.Unlock()
		if !ok {
			return errResetFlood
		}
		return malformed
	}
	if end {
		sc.clientEnded.add(id)
	}
	draining := sc.draining
	full := uint32(len(sc.streams)) >= sc.maxStreams
	// Before it acknowledged our SETTINGS, a client could not know the
	// limit: its refused streams are free.
	calm := full && sc.acked && !sc.unservedLocked()
	sc.mu.Unlock()
	if calm {
		return errResetFlood
	}
	if draining || full {
		// Past MAX_CONCURRENT_STREAMS (streams reset by the client count
		// until their handlers return): the client may retry elsewhere.
		return sc.queueReply(ctrlFrame{kind: ctrlRST, id: id, code: http2.ErrCodeRefusedStream})
	}

	s := sc.srv
	st := &h2ServerStream{sc: sc, codec: protoCodec{}, maxSend: s.cfg.maxSend}
	st.id, st.ss = id, st
	st.ended = end
	st.initBody(contentLength)
	st.recvWin.Store(streamWindow)
	st.recv.init(s.cfg.maxRecv)
	st.recv.bud = &sc.bud
	sc.parseRequest(&st.req, &st.ci)
	if sc.hoverflow {
		st.rerr = Errorf(CodeResourceExhausted, "request headers larger than %d bytes", maxHeaderList)
	}
	st.ci.Protocol = "grpc"
	rh := &st.req
	switch {
	case st.rerr != nil:
	case !strings.HasPrefix(rh.contentType, "application/grpc"):
		st.raw = true
		st.recv.raw = true
		st.req.meta = append(st.req.meta[:0], sc.fields...)
	case rh.method != "POST":
		st.rerr = Errorf(CodeUnimplemented, "gRPC calls use POST, not %s", rh.method)
	default:
		st.svc, st.md, st.sd, st.rerr = s.resolveCall(rh.path, &st.ci)
		if st.rerr == nil && rh.encoding != "" && rh.encoding != encodingIdentity && rh.encoding != encodingGzip {
			st.rerr = Errorf(CodeUnimplemented, "unsupported grpc-encoding %q: this server accepts gzip and identity", rh.encoding)
		}
	}
	var d time.Duration
	if st.rerr == nil && !st.raw {
		d, st.rerr = callDeadline(rh.timeout, rh.hasTimeout, rh.triTimeout)
	}
	if d > 0 {
		st.cctx.Context, st.cancel = context.WithTimeout(sc.ctx, d)
	} else {
		st.cctx.Context, st.cancel = context.WithCancel(sc.ctx)
	}
	st.cctx.st = st
	st.ctx = &st.cctx

	sc.mu.Lock()
	sc.fcMu.Lock()
	st.sendWin = sc.peerInitWin
	sc.fcMu.Unlock()
	sc.streams[id] = &st.h2Stream
	sc.mu.Unlock()
	if end {
		st.recv.finish()
	}
	// Unary calls, and requests that are not gRPC (unary too: JSON, the
	// triple flavour), start once the request is complete (see
	// maxHeldBody).
	held := st.md != nil || st.raw && contentLength <= maxHeldBody
	if !held || st.rerr != nil || end {
		sc.start(st)
	}
	return nil
}

func (sc *h2ServerConn) start(st *h2ServerStream) {
	st.started = true
	select {
	case sc.work <- st: // an idle handler goroutine takes it
	default:
		go sc.worker(st)
	}
}

// maxIdleWorkers bounds the handler goroutines that wait, per connection,
// for the next call.
const maxIdleWorkers = 4

// worker serves st, then waits for the connection's next call instead of
// exiting. A fresh goroutine per call started on a small stack and grew it
// again on every call (runtime.newstack and copystack were about 6% of a
// unary call's CPU); a reused one keeps its stack. Past maxIdleWorkers
// idle ones it exits, and every idle one exits when the connection closes.
func (sc *h2ServerConn) worker(st *h2ServerStream) {
	for {
		sc.run(st)
		if sc.idleWorkers.Add(1) > maxIdleWorkers {
			sc.idleWorkers.Add(-1)
			return
		}
		select {
		case st = <-sc.work:
			sc.idleWorkers.Add(-1)
		case <-sc.closed:
			sc.idleWorkers.Add(-1)
			return
		}
	}
}

// maybeStart starts a unary call whose request is complete or broken, or
// a non-gRPC request past maxHeldBody.
func (sc *h2ServerConn) maybeStart(st *h2ServerStream) {
	if !st.started && (st.recv.ended() || st.raw && st.heldPast()) {
		sc.start(st)
	}
}

func (sc *h2ServerConn) onData(f *http2.DataFrame) error {
	id, n := f.StreamID, int(f.Length)
	if err := sc.bud.onData(n); err != nil {
		return err
	}
	st := sc.stream(id)
	if st == nil {
		// The data only counts for the connection.
		if err := sc.dataOnClosed(id); err != nil {
			sc.bud.adjust(0, 0)
			return err
		}
		sc.dropData()
		return nil
	}
	if err := sc.checkData(st.ss, f); err != nil {
		sc.bud.adjust(0, 0)
		return err
	}
	if st.ss.reset.Load() {
		sc.dropData() // reset, its handler still running: drop the data
		return nil
	}
	if !sc.onStreamFlow(st, n) {
		sc.bud.adjust(0, 0)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl, Cause: errors.New("DATA past the stream window")}
	}
	data := f.Data()
	end := f.StreamEnded()
	credit, _, stuck := st.recv.put(data, end)
	if stuck {
		sc.failPartial()
	}
	credit += n - len(data)
	if !end {
		ss := st.ss
		ss.credit += credit
		if ss.credit >= streamWindow/4 {
			sc.streamCredit(st, ss.credit)
			ss.credit = 0
		}
	}
	if !st.ss.started {
		sc.maybeStart(st.ss)
	}
	return nil
}

// onRST ends a stream the client reset. A reset before any response
// counts against the unserved-stream budget.
func (sc *h2ServerConn) onRST(f *http2.RSTStreamFrame) error {
	st := sc.stream(f.StreamID)
	if st == nil {
		if sc.idleStream(f.StreamID) {
			return errIdleStream
		}
		return nil
	}
	sc.clientEnd(st.ss)
	early := !st.ss.responded.Load() && !st.ss.reset.Load()
	sc.resetStream(st, Errorf(CodeCanceled, "the client reset the stream (%v)", f.ErrCode))
	if early {
		sc.mu.Lock()
		ok := sc.unservedLocked()
		sc.mu.Unlock()
		if !ok {
			return errResetFlood
		}
	}
	return nil
}

// unservedLocked spends one unserved stream; false when none is left.
func (sc *h2ServerConn) unservedLocked() bool {
	sc.unserved--
	return sc.unserved >= 0
}

// resetStream ends a stream the client reset (or that broke).
func (sc *h2ServerConn) resetStream(st *h2Stream, err *Error) {
	ss := st.ss
	ss.reset.Store(true)
	sc.stopSending(st)
	st.recv.fail(err)
	st.recv.release()
	ss.cancel()
	if !ss.started {
		sc.removeStream(ss, false)
	}
}

// removeStream forgets st, once: when its response ended (served, which
// gives back one unserved stream), or when its handler returns. A stream
// the client reset stays until its handler returns, so that handlers stay
// within MAX_CONCURRENT_STREAMS.
func (sc *h2ServerConn) removeStream(st *h2ServerStream, served bool) {
	sc.mu.Lock()
	if sc.streams[st.id] != &st.h2Stream {
		sc.mu.Unlock()
		return
	}
	delete(sc.streams, st.id)
	if served && sc.unserved < sc.maxUnserved {
		sc.unserved++
	}
	n := len(sc.streams)
	if n == 0 && sc.idleTimer != nil {
		sc.idleSince = time.Now()
	}
	closeNow := sc.draining && n == 0
	sc.mu.Unlock()
	st.recv.release()
	if closeNow {
		sc.queue(ctrlFrame{kind: ctrlClose})
	}
}

// drain starts a graceful close: a GOAWAY that admits every stream in
// flight, a PING, and at its answer (or after a second) the final GOAWAY
// naming the last stream served. The connection closes when the calls end.
func (sc *h2ServerConn) drain() {
	sc.queue(ctrlFrame{kind: ctrlGoAway, id: maxStreamID})
	sc.queue(ctrlFrame{kind: ctrlPing, data: drainPing})
	sc.mu.Lock()
	if sc.drainTimer == nil {
		sc.drainTimer = time.AfterFunc(time.Second, sc.finalGoAway)
	}
	sc.mu.Unlock()
}

func (sc *h2ServerConn) finalGoAway() {
	sc.mu.Lock()
	if sc.draining {
		sc.mu.Unlock()
		return
	}
	sc.draining = true
	last, n := sc.maxID, len(sc.streams)
	sc.mu.Unlock()
	sc.queue(ctrlFrame{kind: ctrlGoAway, id: last})
	if n == 0 {
		sc.queue(ctrlFrame{kind: ctrlClose})
	}
}

// run serves one call.
func (sc *h2ServerConn) run(st *h2ServerStream) {
	defer func() {
		st.cancel()
		sc.removeStream(st, !st.reset.Load())
	}()
	if st.raw {
		sc.srv.serveH2HTTP(st)
		return
	}
	if st.rerr != nil {
		st.finish(st.rerr)
		return
	}
	if len(st.req.meta) > 0 {
		st.incoming = readMetadataFields(st.req.meta)
	}
	if st.md != nil {
		reply, err := callUnary(st.ctx, st.md, st.svc.impl, st.recvUnary, sc.srv.unaryIC, st.svc, st.ci.Method)
		if err == nil {
			st.finishUnary(reply)
			return
		}
		st.finish(err)
		return
	}
	st.finish(callStream(st.sd, st.svc.impl, st, sc.srv.streamIC, st.svc, st.ci.Method))
}

// callCtx is a call's context: the values the server attaches, without a
// context.WithValue per value.
type callCtx struct {
	context.Context
	st *h2ServerStream
}

func (c *callCtx) Value(key any) any {
	switch key.(type) {
	case streamKey:
		return c.st
	case callInfoKey:
		return &c.st.ci
	case incomingKey:
		return c.st.incoming
	case peerKey:
		return &c.st.sc.client
	}
	return c.Context.Value(key)
}

// h2ServerStream is one call on the server's HTTP/2 transport.
type h2ServerStream struct {
	h2Stream
	sc       *h2ServerConn
	cctx     callCtx
	ctx      context.Context
	cancel   context.CancelFunc
	req      reqHeaders
	ci       CallInfo
	svc      *service
	md       *MethodDesc
	sd       *StreamDesc
	rerr     *Error
	codec    Codec
	maxSend  int
	incoming Metadata
	raw      bool // not gRPC: served by the HTTP handler
	started  bool // reader goroutine only
	ended    bool // reader goroutine only: the client sent END_STREAM or RST_STREAM
	hasLen   bool // reader goroutine only: the request declared a content-length (bodyLeft)
	credit   int  // reader goroutine only: stream window to return
	reset    atomic.Bool
	// responded is set once response headers went out: a reset after
	// that is no rapid reset.
	responded atomic.Bool

	finished bool
	bodyLeft int32 // reader goroutine only; see initBody
	respMeta
}

func (st *h2ServerStream) Context() context.Context { return st.ctx }

func (st *h2ServerStream) SendHeader(md Metadata) error {
	if err := st.SetHeader(md); err != nil {
		return err
	}
	st.headerSent = true
	return st.sendErr(st.sc.write(st.writeHeaders))
}

// writeHeaders encodes the response headers; wmu held.
func (st *h2ServerStream) writeHeaders() error { return st.writeHeadersFor(nil) }

// writeHeadersFor encodes the response headers sent with m, the first
// message: a wrapper-mode reply adds tri-exception-code.
func (st *h2ServerStream) writeHeadersFor(m any) error {
	st.responded.Store(true)
	c := &st.sc.h2Conn
	c.hf(":status", "200")
	c.hf("content-type", "application/grpc")
	if code := exceptionCodeOf(m); code != 0 {
		c.hf("tri-exception-code", strconv.Itoa(code))
	}
	encodeMetadata(st.header, c.hf)
	return c.endHeaders(st.id, false)
}

// writeTrailers encodes the status, as trailers or as a trailers-only
// response; wmu held.
func (st *h2ServerStream) writeTrailers(e *Error, only bool) error {
	c := &st.sc.h2Conn
	if only {
		c.hf(":status", "200")
		c.hf("content-type", "application/grpc")
		encodeMetadata(st.header, c.hf)
	}
	encodeMetadata(st.trailer, c.hf)
	encodeStatus(e, c.hf)
	if err := c.endHeaders(st.id, true); err != nil {
		return err
	}
	// Served: forget the stream before the trailers leave (the flush is
	// the last writer's), so that a client that opens its next stream on
	// seeing them finds the slot free.
	st.responded.Store(true)
	st.sc.removeStream(st, true)
	if !st.recv.peerDone() {
		// The call is over: the client need not send the rest.
		return c.fr.WriteRSTStream(st.id, http2.ErrCodeNo)
	}
	return nil
}

func (st *h2ServerStream) sendErr(err error) error {
	switch {
	case err == nil:
		return nil
	case st.ctx.Err() != nil:
		return Errorf(CodeOf(st.ctx.Err()), "call ended: %v", st.ctx.Err())
	case errors.Is(err, errStreamDone):
		return Errorf(CodeCanceled, "the client reset the stream")
	}
	return Errorf(CodeUnavailable, "write response: %v", err)
}

func (st *h2ServerStream) SendMsg(m any) error {
	if st.finished {
		return Errorf(CodeInternal, "SendMsg after the call ended")
	}
	if err := st.ctx.Err(); err != nil {
		return Errorf(CodeOf(err), "call ended: %v", err)
	}
	buf, err := marshalEnvelope(st.codec, m, false, st.maxSend)
	if err != nil {
		return err
	}
	defer putBuf(buf)
	var pre func() error
	if !st.headerSent {
		st.headerSent = true
		pre = func() error { return st.writeHeadersFor(m) }
	}
	return st.sendErr(st.sc.sendData(&st.h2Stream, pre, buf.Bytes(), false, nil, nil))
}

// finishUnary sends a unary call's response: headers, message and
// trailers, in one write when the flow-control window allows.
func (st *h2ServerStream) finishUnary(reply any) {
	buf, err := marshalEnvelope(st.codec, reply, false, st.maxSend)
	if err != nil {
		st.finish(err)
		return
	}
	defer putBuf(buf)
	st.finished = true
	sendHeaders := !st.headerSent
	st.headerSent = true
	_ = st.sc.sendData(&st.h2Stream, func() error {
		if sendHeaders {
			return st.writeHeadersFor(reply)
		}
		return nil
	}, buf.Bytes(), false, func() error { return st.writeTrailers(nil, false) }, nil)
}

func (st *h2ServerStream) RecvMsg(m any) error {
	msg, credit, err := st.recv.take(nil)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return err
	}
	st.sc.streamCredit(&st.h2Stream, credit)
	return decodeMsg(st.codec, msg, st.req.encoding, st.recv.maxRecv, m)
}

// recvUnary reads the single request of a unary call.
func (st *h2ServerStream) recvUnary(m any) error {
	if err := st.RecvMsg(m); err != nil {
		if errors.Is(err, io.EOF) {
			return Errorf(CodeInternal, "unary call without a request message")
		}
		return err
	}
	if msg, _, err := st.recv.take(nil); err == nil {
		putMsgBuf(msg.buf)
		return Errorf(CodeInternal, "unary call with more than one request message")
	}
	return nil
}

// finish ends the call with its status.
func (st *h2ServerStream) finish(err error) {
	if st.finished {
		return
	}
	st.finished = true
	if st.reset.Load() {
		return
	}
	var e *Error
	if err != nil {
		e = asError(err)
	}
	only := !st.headerSent
	st.headerSent = true
	_ = st.sc.write(func() error { return st.writeTrailers(e, only) })
}

// sniffH2 reads enough of a new connection to tell the HTTP/2 preface
// from an HTTP/1 request line.
func sniffH2(br *bufio.Reader) (bool, error) {
	for n := 1; n <= len(http2.ClientPreface); n++ {
		b, err := br.Peek(n)
		if err != nil {
			return false, err
		}
		if b[n-1] != http2.ClientPreface[n-1] {
			return false, nil
		}
	}
	return true, nil
}

// sniffedConn replays the bytes read while sniffing.
type sniffedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *sniffedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// connListener hands sniffed HTTP/1 connections to net/http.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once atomic.Bool
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	if l.once.CompareAndSwap(false, true) {
		close(l.done)
	}
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

func (l *connListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		_ = c.Close()
	}
}

// bodyReader reads a raw request body from a stream.
type bodyReader struct {
	st  *h2ServerStream
	cur *[]byte
	off int
}

func (r *bodyReader) Read(p []byte) (int, error) {
	for r.cur == nil || r.off == len(*r.cur) {
		if r.cur != nil {
			putMsgBuf(r.cur)
			r.cur = nil
		}
		m, credit, err := r.st.recv.take(r.st.ctx.Done())
		if err != nil {
			if errors.Is(err, errCanceled) {
				return 0, r.st.ctx.Err()
			}
			return 0, err
		}
		r.st.sc.streamCredit(&r.st.h2Stream, credit)
		r.cur, r.off = m.buf, 0
	}
	n := copy(p, (*r.cur)[r.off:])
	r.off += n
	return n, nil
}
