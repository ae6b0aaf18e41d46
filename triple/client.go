package triple

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ClientConn calls one Triple endpoint over one multiplexed HTTP/2
// connection, dialed lazily and redialed after failures. It implements
// Invoker and is safe for concurrent use.
type ClientConn struct {
	cfg      clientConfig
	target   string
	host     string // :authority and the address dialed
	scheme   string // :scheme
	unary    UnaryInvoker
	streamer Streamer

	mu      sync.Mutex
	cur     *h2ClientConn
	dialing *dialAttempt
}

type dialAttempt struct {
	done chan struct{}
	c    *h2ClientConn
	err  error
	// timedOut says the dial failed because the dialing caller's own
	// deadline or cancellation ended it: callers waiting on it dial again
	// within theirs instead of taking that caller's error.
	timedOut bool
}

// Dial returns a connection to target: "host:port", "tri://host:port",
// "http://host:port" or "https://host:port". No I/O happens until the first
// call.
func Dial(target string, opts ...ClientOption) (*ClientConn, error) {
	cfg, err := newClientConfig(opts)
	if err != nil {
		return nil, err
	}
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
	scheme := "http"
	if cfg.tls != nil {
		scheme = "https"
	}
	cc := &ClientConn{cfg: cfg, target: target, host: host, scheme: scheme}
	cc.unary = chainUnaryClient(cfg.unary, cc.invoke)
	cc.streamer = chainStreamClient(cfg.stream, cc.newStream)
	return cc, nil
}

// Target returns the target the connection was dialed with.
func (cc *ClientConn) Target() string { return cc.target }

// Close closes the connection once its calls in flight have ended; a later
// call dials again.
func (cc *ClientConn) Close() error {
	cc.mu.Lock()
	c := cc.cur
	cc.cur = nil
	cc.mu.Unlock()
	if c != nil {
		c.drain()
	}
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

func (cc *ClientConn) callConfigOf(opts []CallOption) callConfig {
	c := callConfig{protocol: cc.cfg.protocol}
	for _, o := range opts {
		o.applyCall(&c)
	}
	return c
}

// connUntil returns the current connection, or dials (or waits for a dial)
// bounded by dl as well as ctx.
func (cc *ClientConn) connUntil(ctx context.Context, dl time.Time) (*h2ClientConn, error) {
	if dl.IsZero() {
		return cc.getConn(ctx)
	}
	cc.mu.Lock()
	c := cc.cur
	cc.mu.Unlock()
	if c != nil && c.usable() {
		return c, nil
	}
	if !time.Now().Before(dl) {
		return nil, errDeadline()
	}
	dctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()
	c, err := cc.getConn(dctx)
	if err != nil && ctx.Err() == nil && !time.Now().Before(dl) {
		// The dialer's own timer can beat the context's: the call ran out
		// of time, whatever the dial error says.
		return nil, &Error{code: CodeDeadlineExceeded, msg: "deadline exceeded while connecting: " + err.Error(), cause: err}
	}
	return c, err
}

// getConn returns the current connection, dialing one when there is none.
func (cc *ClientConn) getConn(ctx context.Context) (*h2ClientConn, error) {
	for {
		cc.mu.Lock()
		if c := cc.cur; c != nil {
			if c.usable() {
				cc.mu.Unlock()
				return c, nil
			}
			cc.cur = nil
		}
		d := cc.dialing
		if d == nil {
			d = &dialAttempt{done: make(chan struct{})}
			cc.dialing = d
			cc.mu.Unlock()
			d.c, d.err = cc.dial(ctx)
			if d.err != nil {
				dl, ok := ctx.Deadline()
				d.timedOut = ctx.Err() != nil || (ok && !time.Now().Before(dl))
			}
			cc.mu.Lock()
			cc.dialing = nil
			if d.err == nil {
				cc.cur = d.c
			}
			cc.mu.Unlock()
			close(d.done)
			return d.c, d.err
		}
		cc.mu.Unlock()
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, transportError(ctx, ctx.Err())
		}
		if d.err != nil && ctx.Err() == nil && !d.timedOut && !errors.Is(d.err, context.Canceled) && !errors.Is(d.err, context.DeadlineExceeded) {
			return nil, d.err
		}
	}
}

func (cc *ClientConn) dial(ctx context.Context) (*h2ClientConn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", cc.host)
	if err != nil {
		return nil, transportError(ctx, err)
	}
	if cc.cfg.tls != nil {
		cfg := cc.cfg.tls.Clone()
		cfg.NextProtos = []string{"h2"}
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(cc.host)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, transportError(ctx, &net.OpError{Op: "dial", Net: "tcp", Addr: nc.RemoteAddr(), Err: err})
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			_ = nc.Close()
			return nil, Errorf(CodeUnavailable, "the server at %s does not speak HTTP/2 over TLS (ALPN %q)", cc.host, p)
		}
		nc = tc
	}
	c, err := newH2ClientConn(cc, nc)
	if err != nil {
		_ = nc.Close()
		return nil, transportError(ctx, err)
	}
	return c, nil
}

func (cc *ClientConn) invoke(ctx context.Context, method string, req, reply any, opts ...CallOption) error {
	cfg := cc.callConfigOf(opts)
	dl := cfg.ownDeadline(ctx)
	if !strings.HasPrefix(method, "/") {
		return Errorf(CodeInternal, "method %q must look like /service/Method", method)
	}
	// A deadline already past fails at once: on an open connection the
	// call would otherwise race its own timer against a fast answer.
	if !dl.IsZero() && !time.Now().Before(dl) {
		return errDeadline()
	}
	compress := cc.cfg.compress || cfg.compress
	switch cfg.protocol {
	case ProtocolGRPC:
	case ProtocolTriple:
		if !dl.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl)
			defer cancel()
		}
		return cc.invokeTriple(ctx, method, req, reply, &cfg, compress)
	default:
		return Errorf(CodeInternal, "unknown %v: use ProtocolGRPC or ProtocolTriple", cfg.protocol)
	}
	buf, err := marshalEnvelope(protoCodec{}, req, compress, cc.cfg.maxSend)
	if err != nil {
		return err
	}
	defer putBuf(buf)
	for attempt := 0; ; attempt++ {
		c, err := cc.connUntil(ctx, dl)
		if err != nil {
			return err
		}
		cs := newClientStream(c, ctx, true, compress)
		cs.deadline = dl
		if err = c.open(cs, method, &cfg, buf.Bytes()); err == nil {
			err = cs.await(reply, &cfg)
		} else {
			err = cs.sendFailure(err)
		}
		if cs.timer != nil {
			cs.timer.stop()
		}
		// A stream the server never processed (GOAWAY, REFUSED_STREAM) is
		// safe to send again.
		if err == nil || !cs.refused.Load() || attempt == 3 || ctx.Err() != nil || cs.expired() {
			return err
		}
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
