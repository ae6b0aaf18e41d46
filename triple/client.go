package triple

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// ClientConn calls one Triple endpoint over one multiplexed HTTP/2
// connection, dialed lazily and redialed after failures. It implements
// Invoker and is safe for concurrent use.
type ClientConn struct {
	cfg      clientConfig
	target   string
	base     string // scheme://host:port
	hc       *http.Client
	tr       *http.Transport
	unary    UnaryInvoker
	streamer Streamer
}

// Dial returns a connection to target: "host:port", "tri://host:port",
// "http://host:port" or "https://host:port". No I/O happens until the first
// call.
func Dial(target string, opts ...ClientOption) (*ClientConn, error) {
	cfg := newClientConfig(opts)
	host := target
	if i := strings.Index(target, "://"); i >= 0 {
		u, err := url.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("triple: bad target %q: %w", target, err)
		}
		switch u.Scheme {
		case "tri", "grpc", "http", "dns":
		case "https", "tris", "grpcs":
			if cfg.tls == nil {
				cfg.tls = &tls.Config{MinVersion: tls.VersionTLS12}
			}
		default:
			return nil, fmt.Errorf("triple: bad target %q: unknown scheme %q (use tri://host:port)", target, u.Scheme)
		}
		host = u.Host
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		return nil, fmt.Errorf("triple: bad target %q: want host:port: %w", target, err)
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     5 * time.Minute,
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerStream:     4 << 20,
			MaxReceiveBufferPerConnection: 16 << 20,
			SendPingTimeout:               cfg.keepalive,
			PingTimeout:                   cfg.keepalive,
		},
	}
	tr.Protocols = new(http.Protocols)
	scheme := "http"
	if cfg.tls != nil {
		scheme = "https"
		tr.TLSClientConfig = cfg.tls.Clone()
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	cc := &ClientConn{cfg: cfg, target: target, base: scheme + "://" + host, tr: tr, hc: &http.Client{Transport: tr}}
	cc.unary = chainUnaryClient(cfg.unary, cc.invoke)
	cc.streamer = chainStreamClient(cfg.stream, cc.newStream)
	return cc, nil
}

// Target returns the target the connection was dialed with.
func (cc *ClientConn) Target() string { return cc.target }

// Close closes the idle connections; calls in flight end on their own.
func (cc *ClientConn) Close() error {
	cc.tr.CloseIdleConnections()
	return nil
}

// Invoke makes a unary call.
func (cc *ClientConn) Invoke(ctx context.Context, method string, req, reply any, opts ...CallOption) error {
	return cc.unary(ctx, method, req, reply, opts...)
}

// NewStream opens a streaming call.
func (cc *ClientConn) NewStream(ctx context.Context, desc *StreamDesc, method string, opts ...CallOption) (ClientStream, error) {
	return cc.streamer(ctx, desc, method, opts...)
}

func callConfigOf(opts []CallOption) callConfig {
	var c callConfig
	for _, o := range opts {
		o.applyCall(&c)
	}
	return c
}

// newRequest builds the HTTP request of a call.
func (cc *ClientConn) newRequest(ctx context.Context, method string, cfg *callConfig, body io.Reader) (*http.Request, error) {
	if !strings.HasPrefix(method, "/") {
		return nil, Errorf(CodeInternal, "method %q must look like /service/Method", method)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cc.base+method, body)
	if err != nil {
		return nil, Errorf(CodeInternal, "build request: %v", err)
	}
	h := req.Header
	h[hdrContentType] = []string{"application/grpc+proto"}
	h[hdrTE] = []string{"trailers"}
	h[hdrUserAgent] = []string{cc.cfg.userAgent}
	h[hdrGRPCAcceptEnc] = []string{encodingGzip}
	if dl, ok := ctx.Deadline(); ok {
		h[hdrGRPCTimeout] = []string{encodeTimeout(time.Until(dl))}
	}
	if cfg.group != "" {
		h[hdrTriGroup] = []string{cfg.group}
	}
	if cfg.version != "" {
		h[hdrTriVersion] = []string{cfg.version}
	}
	if cc.cfg.application != "" {
		h[hdrTriApp] = []string{cc.cfg.application}
	}
	if cc.cfg.compress || cfg.compress {
		h[hdrGRPCEncoding] = []string{encodingGzip}
	}
	if md, ok := FromOutgoingContext(ctx); ok {
		writeMetadata(h, md)
	}
	return req, nil
}

func (cc *ClientConn) invoke(ctx context.Context, method string, req, reply any, opts ...CallOption) error {
	cfg := callConfigOf(opts)
	if cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
	}
	buf, err := marshalEnvelope(protoCodec{}, req, cc.cfg.compress || cfg.compress, cc.cfg.maxSend)
	if err != nil {
		return err
	}
	defer putBuf(buf)
	hreq, err := cc.newRequest(ctx, method, &cfg, bytes.NewReader(buf.Bytes()))
	if err != nil {
		return err
	}
	hreq.ContentLength = int64(buf.Len())
	resp, err := cc.hc.Do(hreq)
	if err != nil {
		return transportError(ctx, err)
	}
	defer resp.Body.Close()
	rs := &responseReader{resp: resp, maxRecv: cc.cfg.maxRecv}
	if err := rs.start(); err != nil {
		cfg.store(rs)
		return err
	}
	if err := rs.recv(ctx, reply); err != nil {
		cfg.store(rs)
		if errors.Is(err, io.EOF) {
			return Errorf(CodeInternal, "unary response without a message")
		}
		return err
	}
	// Drain to the trailers: the status is only known there.
	err = rs.recv(ctx, nil)
	cfg.store(rs)
	if errors.Is(err, io.EOF) {
		readExceptionCode(reply, resp.Header, resp.Trailer) // wrapper mode
		return nil
	}
	if err == nil {
		return Errorf(CodeInternal, "unary response with more than one message")
	}
	return err
}

func (c *callConfig) store(rs *responseReader) {
	if c.header != nil {
		*c.header = rs.header()
	}
	if c.trailer != nil {
		*c.trailer = rs.trailer()
	}
}

// transportError turns an HTTP client error into a status error; the
// context's own error wins.
func transportError(ctx context.Context, err error) *Error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &Error{code: CodeOf(ctxErr), msg: ctxErr.Error(), cause: err}
	}
	e := &Error{code: CodeUnavailable, msg: err.Error(), cause: err}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		e.msg = "connect: " + opErr.Err.Error()
	}
	return e
}

// IsConnectFailure reports whether err says the call never reached the
// server (dialing failed): such a call is always safe to retry elsewhere.
func IsConnectFailure(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// responseReader reads a gRPC response: headers, messages, trailers.
type responseReader struct {
	resp    *http.Response
	maxRecv int
	body    *envelopeReader
	done    bool
	status  *Error // final status, once known; nil with done means OK
}

// start checks the response headers; a trailers-only response ends here.
func (rs *responseReader) start() error {
	resp := rs.resp
	ct := resp.Header.Get(hdrContentType)
	if resp.StatusCode != http.StatusOK {
		rs.done = true
		rs.status = Errorf(codeFromHTTP(resp.StatusCode), "HTTP status %d (%s) from the server", resp.StatusCode, ct)
		if e := statusFrom(resp.Header); e != nil && e.code != CodeOK {
			rs.status = e
		}
		return rs.status
	}
	if !strings.HasPrefix(ct, "application/grpc") {
		rs.done = true
		rs.status = Errorf(CodeUnknown, "unexpected content type %q from the server: not a gRPC/Triple endpoint?", ct)
		return rs.status
	}
	if resp.Header.Get(hdrGRPCStatus) != "" { // trailers-only
		rs.done = true
		rs.status = statusFrom(resp.Header)
		if rs.status != nil && rs.status.code == CodeOK {
			rs.status = nil
		}
		if rs.status != nil {
			rs.status.meta = rs.header()
			return rs.status
		}
		return nil
	}
	rs.body = &envelopeReader{r: resp.Body, maxRecv: rs.maxRecv, compressed: resp.Header.Get(hdrGRPCEncoding)}
	return nil
}

// recv reads the next message into m (nil: expect the end). io.EOF means
// the call ended with status OK.
func (rs *responseReader) recv(ctx context.Context, m any) error {
	if rs.done {
		if rs.status != nil {
			return rs.status
		}
		return io.EOF
	}
	buf, err := rs.body.next()
	if err != nil {
		rs.done = true
		if errors.Is(err, io.EOF) {
			rs.status = statusFrom(rs.resp.Trailer)
			if rs.status == nil {
				rs.status = Errorf(CodeInternal, "the server closed the stream without a grpc-status trailer")
			} else if rs.status.code == CodeOK {
				rs.status = nil
				return io.EOF
			}
			rs.status.meta = rs.trailer()
			return rs.status
		}
		var e *Error
		if errors.As(err, &e) {
			rs.status = e
		} else {
			rs.status = transportError(ctx, err)
		}
		return rs.status
	}
	defer putBuf(buf)
	if m == nil {
		return nil
	}
	if err := (protoCodec{}).Unmarshal(buf.Bytes(), m); err != nil {
		return Errorf(CodeInternal, "unmarshal response into %T: %v", m, err)
	}
	return nil
}

func (rs *responseReader) header() Metadata { return readMetadata(rs.resp.Header) }

func (rs *responseReader) trailer() Metadata { return readMetadata(rs.resp.Trailer) }

// statusFrom reads grpc-status, grpc-message and details from h; nil when
// h has no grpc-status.
func statusFrom(h http.Header) *Error {
	v := h.Get(hdrGRPCStatus)
	if v == "" {
		return nil
	}
	code, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return Errorf(CodeInternal, "malformed grpc-status %q", v)
	}
	e := &Error{code: Code(code), msg: decodeGRPCMessage(h.Get(hdrGRPCMessage))}
	if d := h.Get(hdrGRPCStatusDetails); d != "" {
		if b, err := decodeBinHeader(d); err == nil {
			var st spb.Status
			if proto.Unmarshal(b, &st) == nil {
				e.details = st.GetDetails()
			}
		}
	}
	return e
}

// clientStream is a streaming call: the request body is a pipe written by
// SendMsg; the response is read as it arrives.
type clientStream struct {
	ctx      context.Context
	cancel   context.CancelFunc
	cc       *ClientConn
	desc     *StreamDesc
	compress bool
	pw       *io.PipeWriter

	respOnce sync.Once
	respCh   chan struct{}
	resp     *http.Response
	respErr  error
	rs       *responseReader

	sendMu sync.Mutex
	closed bool
}

func (cc *ClientConn) newStream(ctx context.Context, desc *StreamDesc, method string, opts ...CallOption) (ClientStream, error) {
	cfg := callConfigOf(opts)
	ctx, cancel := context.WithCancel(ctx)
	if cfg.timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, cfg.timeout)
		outer := cancel
		cancel = func() { stop(); outer() }
	}
	pr, pw := io.Pipe()
	req, err := cc.newRequest(ctx, method, &cfg, pr)
	if err != nil {
		cancel()
		return nil, err
	}
	cs := &clientStream{
		ctx: ctx, cancel: cancel, cc: cc, desc: desc, pw: pw, respCh: make(chan struct{}),
		compress: cc.cfg.compress || cfg.compress,
	}
	go func() {
		resp, err := cc.hc.Do(req) //nolint:bodyclose // closed by clientStream.finish
		cs.resp, cs.respErr = resp, err
		if err != nil {
			_ = pr.CloseWithError(err)
		}
		close(cs.respCh)
	}()
	context.AfterFunc(ctx, func() { _ = pw.CloseWithError(ctx.Err()) })
	return cs, nil
}

func (cs *clientStream) Context() context.Context { return cs.ctx }

// waitResponse waits for the response headers.
func (cs *clientStream) waitResponse() error {
	select {
	case <-cs.respCh:
	case <-cs.ctx.Done():
		<-cs.respCh
	}
	cs.respOnce.Do(func() {
		if cs.respErr != nil {
			cs.rs = &responseReader{done: true, status: transportError(cs.ctx, cs.respErr)}
			cs.cancel()
			return
		}
		cs.rs = &responseReader{resp: cs.resp, maxRecv: cs.cc.cfg.maxRecv}
		if err := cs.rs.start(); err != nil {
			cs.finish()
		}
	})
	if cs.rs.resp == nil {
		return cs.rs.status
	}
	return nil
}

func (cs *clientStream) Header() (Metadata, error) {
	if err := cs.waitResponse(); err != nil {
		return nil, err
	}
	return cs.rs.header(), nil
}

func (cs *clientStream) Trailer() Metadata {
	if cs.rs == nil || cs.rs.resp == nil || !cs.rs.done {
		return nil
	}
	return cs.rs.trailer()
}

func (cs *clientStream) SendMsg(m any) error {
	cs.sendMu.Lock()
	defer cs.sendMu.Unlock()
	if cs.closed {
		return Errorf(CodeInternal, "SendMsg after CloseSend")
	}
	buf, err := marshalEnvelope(protoCodec{}, m, cs.compress, cs.cc.cfg.maxSend)
	if err != nil {
		return err
	}
	defer putBuf(buf)
	if _, err := cs.pw.Write(buf.Bytes()); err != nil {
		// The stream is over: the reason comes from RecvMsg, as in grpc-go.
		return io.EOF
	}
	return nil
}

func (cs *clientStream) CloseSend() error {
	cs.sendMu.Lock()
	defer cs.sendMu.Unlock()
	if !cs.closed {
		cs.closed = true
		return cs.pw.Close()
	}
	return nil
}

func (cs *clientStream) RecvMsg(m any) error {
	if err := cs.waitResponse(); err != nil {
		return err
	}
	err := cs.rs.recv(cs.ctx, m)
	if err != nil {
		cs.finish()
	}
	return err
}

// finish releases the call once its status is known.
func (cs *clientStream) finish() {
	_ = cs.CloseSend()
	if cs.resp != nil {
		_ = cs.resp.Body.Close()
	}
	cs.cancel()
}
