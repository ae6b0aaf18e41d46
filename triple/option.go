package triple

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"golang.org/x/net/http2/hpack"
)

// Defaults, as Dubbo Java's.
const (
	DefaultMaxMessageSize  = 8 << 20
	DefaultShutdownTimeout = 10 * time.Second
)

// Server limits on HTTP/2 connections (see WithMaxConcurrentStreams,
// WithIdleTimeout and WithHandshakeTimeout).
const (
	DefaultMaxConcurrentStreams = 1000
	DefaultIdleTimeout          = 3 * time.Minute
	DefaultHandshakeTimeout     = 10 * time.Second
)

// ServerOption configures a Server.
type ServerOption interface{ applyServer(*serverConfig) }

// ClientOption configures a ClientConn.
type ClientOption interface{ applyClient(*clientConfig) }

// Option configures both sides.
type Option interface {
	ServerOption
	ClientOption
}

type serverConfig struct {
	maxRecv, maxSend int
	unary            []UnaryServerInterceptor
	stream           []StreamServerInterceptor
	tls              *tls.Config
	logger           *slog.Logger
	keepalive        time.Duration
	health           bool
	reflection       bool
	maxStreams       uint32
	idleTimeout      time.Duration
	handshakeTimeout time.Duration
	maxConnBuffer    int
}

type clientConfig struct {
	maxRecv, maxSend int
	unary            []UnaryClientInterceptor
	stream           []StreamClientInterceptor
	tls              *tls.Config
	application      string
	compress         bool
	keepalive        time.Duration
	userAgent        string
	protocol         Protocol
}

type bothOption struct {
	server func(*serverConfig)
	client func(*clientConfig)
}

func (o bothOption) applyServer(c *serverConfig) {
	if o.server != nil {
		o.server(c)
	}
}

func (o bothOption) applyClient(c *clientConfig) {
	if o.client != nil {
		o.client(c)
	}
}

type serverOption func(*serverConfig)

func (f serverOption) applyServer(c *serverConfig) { f(c) }

type clientOption func(*clientConfig)

func (f clientOption) applyClient(c *clientConfig) { f(c) }

// WithMaxRecvMessageSize limits received messages (default 8 MiB). Larger
// messages fail with RESOURCE_EXHAUSTED before they are read into memory.
func WithMaxRecvMessageSize(n int) Option {
	return bothOption{func(c *serverConfig) { c.maxRecv = n }, func(c *clientConfig) { c.maxRecv = n }}
}

// WithMaxSendMessageSize limits sent messages (default 8 MiB).
func WithMaxSendMessageSize(n int) Option {
	return bothOption{func(c *serverConfig) { c.maxSend = n }, func(c *clientConfig) { c.maxSend = n }}
}

// WithTLS serves or dials with TLS (HTTP/2 negotiated by ALPN).
func WithTLS(cfg *tls.Config) Option {
	return bothOption{func(c *serverConfig) { c.tls = cfg }, func(c *clientConfig) { c.tls = cfg }}
}

// WithKeepalive sends an HTTP/2 PING after d without frames and drops the
// connection when it goes unanswered for as long.
func WithKeepalive(d time.Duration) Option {
	return bothOption{func(c *serverConfig) { c.keepalive = d }, func(c *clientConfig) { c.keepalive = d }}
}

// WithUnaryInterceptors adds server unary interceptors, run in order.
func WithUnaryInterceptors(ics ...UnaryServerInterceptor) ServerOption {
	return serverOption(func(c *serverConfig) { c.unary = append(c.unary, ics...) })
}

// WithStreamInterceptors adds server stream interceptors, run in order.
func WithStreamInterceptors(ics ...StreamServerInterceptor) ServerOption {
	return serverOption(func(c *serverConfig) { c.stream = append(c.stream, ics...) })
}

// WithLogger sets the server's logger (default slog.Default()).
func WithLogger(l *slog.Logger) ServerOption {
	return serverOption(func(c *serverConfig) { c.logger = l })
}

// WithoutHealth turns off the built-in grpc.health.v1.Health service.
func WithoutHealth() ServerOption { return serverOption(func(c *serverConfig) { c.health = false }) }

// WithoutReflection turns off the built-in server reflection services.
func WithoutReflection() ServerOption {
	return serverOption(func(c *serverConfig) { c.reflection = false })
}

// WithMaxConcurrentStreams sets the SETTINGS_MAX_CONCURRENT_STREAMS the
// server advertises on each HTTP/2 connection (default 1000): streams past
// it are refused with RST_STREAM REFUSED_STREAM, and a stream the client
// reset counts until its handler returns, so that at most n handlers run
// per connection. 0 keeps the default.
func WithMaxConcurrentStreams(n uint32) ServerOption {
	return serverOption(func(c *serverConfig) { c.maxStreams = n })
}

// WithIdleTimeout closes an HTTP/2 connection gracefully (GOAWAY NO_ERROR)
// once it has had no call in flight for d (default 3 minutes); d < 0
// keeps idle connections open (so does 0). An HTTP/1 keep-alive
// connection is closed after d without a request. Clients reconnect on
// their next call.
func WithIdleTimeout(d time.Duration) ServerOption {
	return serverOption(func(c *serverConfig) { c.idleTimeout = d })
}

// WithHandshakeTimeout bounds the wait for an HTTP/2 client's connection
// preface and first SETTINGS frame (default 10 s); a client that sends
// neither in time gets GOAWAY NO_ERROR and is closed. It also bounds a TLS
// handshake and an HTTP/1 client's wait for its request headers.
func WithHandshakeTimeout(d time.Duration) ServerOption {
	return serverOption(func(c *serverConfig) { c.handshakeTimeout = d })
}

// WithUnaryClientInterceptors adds client unary interceptors, run in order.
func WithUnaryClientInterceptors(ics ...UnaryClientInterceptor) ClientOption {
	return clientOption(func(c *clientConfig) { c.unary = append(c.unary, ics...) })
}

// WithStreamClientInterceptors adds client stream interceptors, run in order.
func WithStreamClientInterceptors(ics ...StreamClientInterceptor) ClientOption {
	return clientOption(func(c *clientConfig) { c.stream = append(c.stream, ics...) })
}

// WithApplication names the calling application (tri-consumer-appname).
func WithApplication(name string) ClientOption {
	return clientOption(func(c *clientConfig) { c.application = name })
}

// WithGzip compresses every request message with gzip.
func WithGzip() ClientOption { return clientOption(func(c *clientConfig) { c.compress = true }) }

func newServerConfig(opts []ServerOption) serverConfig {
	c := serverConfig{
		maxRecv: DefaultMaxMessageSize, maxSend: DefaultMaxMessageSize, logger: slog.Default(), health: true, reflection: true,
		maxStreams: DefaultMaxConcurrentStreams, idleTimeout: DefaultIdleTimeout, handshakeTimeout: DefaultHandshakeTimeout,
		maxConnBuffer: DefaultMaxConnectionBuffer,
	}
	for _, o := range opts {
		o.applyServer(&c)
	}
	if c.maxStreams == 0 {
		c.maxStreams = DefaultMaxConcurrentStreams
	}
	if c.handshakeTimeout <= 0 {
		c.handshakeTimeout = DefaultHandshakeTimeout
	}
	if c.maxRecv <= 0 {
		c.maxRecv = DefaultMaxMessageSize
	}
	if c.maxSend <= 0 {
		c.maxSend = DefaultMaxMessageSize
	}
	if c.maxConnBuffer <= 0 {
		c.maxConnBuffer = DefaultMaxConnectionBuffer
	}
	c.maxConnBuffer = max(c.maxConnBuffer, min(c.maxRecv, 1<<32)+1<<20)
	return c
}

func newClientConfig(opts []ClientOption) (clientConfig, error) {
	c := clientConfig{maxRecv: DefaultMaxMessageSize, maxSend: DefaultMaxMessageSize, userAgent: "shoal-triple/" + Version}
	for _, o := range opts {
		o.applyClient(&c)
	}
	if c.maxRecv <= 0 {
		c.maxRecv = DefaultMaxMessageSize
	}
	if c.maxSend <= 0 {
		c.maxSend = DefaultMaxMessageSize
	}
	if c.protocol > ProtocolTriple {
		return c, fmt.Errorf("triple: unknown %v: use ProtocolGRPC or ProtocolTriple", c.protocol)
	}
	return c, nil
}

// CallOption configures one call.
type CallOption interface{ applyCall(*callConfig) }

type callConfig struct {
	protocol       Protocol
	group, version string
	timeout        time.Duration
	deadline       time.Time
	compress       bool
	header         *Metadata
	trailer        *Metadata
	headerValue    *HeaderValue
	requestHeaders []hpack.HeaderField // from RequestHeaders, encoded once
}

type callOption func(*callConfig)

func (f callOption) applyCall(c *callConfig) { f(c) }

// WithGroup calls the service exported under group (tri-service-group).
func WithGroup(g string) CallOption { return callOption(func(c *callConfig) { c.group = g }) }

// WithVersion calls the service exported under version (tri-service-version).
func WithVersion(v string) CallOption { return callOption(func(c *callConfig) { c.version = v }) }

// WithTimeout bounds the call; the context's deadline still applies.
func WithTimeout(d time.Duration) CallOption {
	return callOption(func(c *callConfig) { c.timeout = d })
}

// WithDeadline bounds the call by an absolute time; the context's deadline
// still applies, and the earlier of the two is sent as grpc-timeout.
func WithDeadline(t time.Time) CallOption { return &Deadline{At: t} }

// Deadline is the call option WithDeadline returns. A unary call bounded
// by it (or by WithTimeout) derives no context: the client ends the call
// with DEADLINE_EXCEEDED at that time from one pooled timer. A *Deadline is
// read when the call starts, so a caller that makes many calls may keep
// one per call in flight and reuse it once the call has returned.
type Deadline struct {
	// At is when the call must end; the zero time sets no bound.
	At time.Time
}

func (d *Deadline) applyCall(c *callConfig) {
	if !d.At.IsZero() && (c.deadline.IsZero() || d.At.Before(c.deadline)) {
		c.deadline = d.At
	}
}

// ownDeadline is the call's bound from WithTimeout and WithDeadline when it
// is earlier than ctx's deadline, or the zero time when ctx bounds the call
// at least as tightly.
func (c *callConfig) ownDeadline(ctx context.Context) time.Time {
	dl := c.deadline
	if c.timeout > 0 {
		if t := time.Now().Add(c.timeout); dl.IsZero() || t.Before(dl) {
			dl = t
		}
	}
	if dl.IsZero() {
		return dl
	}
	if cd, ok := ctx.Deadline(); ok && !cd.After(dl) {
		return time.Time{}
	}
	return dl
}

// WithCallGzip compresses this call's request messages.
func WithCallGzip() CallOption { return callOption(func(c *callConfig) { c.compress = true }) }

// Header stores the response headers of a unary call in md.
func Header(md *Metadata) CallOption { return callOption(func(c *callConfig) { c.header = md }) }

// Trailer stores the response trailers of a unary call in md.
func Trailer(md *Metadata) CallOption { return callOption(func(c *callConfig) { c.trailer = md }) }

// HeaderValue is a call option that reads one response header of a unary
// call without building the header map Header builds: a caller that needs
// one value on every call (Istio's peer metadata) allocates nothing for
// it. A call reads one HeaderValue, the last given. Like *Deadline, it
// may be pooled and reused once the call returned.
type HeaderValue struct {
	// Key is the header's name in lower case.
	Key string
	// Value is set when the call returns: the header's first value, or
	// "" when the response had none.
	Value string
}

func (h *HeaderValue) applyCall(c *callConfig) { c.headerValue = h }

// RequestHeaders sends md with the call, after the metadata of the call's
// context (NewOutgoingContext); a call reads one RequestHeaders, the last
// given. md is encoded into header fields here, once (lower-case names,
// base64 for -bin keys, tri-header-convert for upper case, protocol and
// reserved keys dropped, as for the context's metadata); later changes to
// md are not sent. One option may be shared by every call: it adds headers
// without a context or any per-call encoding work (Istio's metadata
// exchange on every call allocates nothing for it).
func RequestHeaders(md Metadata) CallOption {
	r := &requestHeaders{}
	encodeMetadata(md, func(k, v string) { r.fields = append(r.fields, hpack.HeaderField{Name: k, Value: v}) })
	return r
}

type requestHeaders struct{ fields []hpack.HeaderField }

func (r *requestHeaders) applyCall(c *callConfig) { c.requestHeaders = r.fields }

// Protocol is the wire flavour of a client's unary calls.
type Protocol uint8

const (
	// ProtocolGRPC is gRPC over HTTP/2 (application/grpc+proto), what Dubbo
	// Java, dubbo-go and grpc-go all serve. The default.
	ProtocolGRPC Protocol = iota
	// ProtocolTriple is dubbo-go's connect-derived triple flavour for unary
	// calls: the bare message as an application/proto body,
	// Triple-Protocol-Version, Triple-Timeout-Ms, errors as a JSON body.
	// The flavour has no streams: streaming calls still use gRPC framing.
	ProtocolTriple
)

func (p Protocol) String() string {
	switch p {
	case ProtocolGRPC:
		return "grpc"
	case ProtocolTriple:
		return "triple"
	}
	return "protocol(" + strconv.Itoa(int(p)) + ")"
}

// ProtocolOption selects a Protocol for a ClientConn or for one call.
type ProtocolOption struct{ p Protocol }

func (o ProtocolOption) applyClient(c *clientConfig) { c.protocol = o.p }

func (o ProtocolOption) applyCall(c *callConfig) { c.protocol = o.p }

// WithProtocol makes unary calls in protocol p: as a ClientOption for every
// call of the connection, as a CallOption for one call.
func WithProtocol(p Protocol) ProtocolOption { return ProtocolOption{p} }

// Version of the triple module.
const Version = "0.1.0"
