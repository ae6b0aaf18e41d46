package tri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Transport dials one triple.ClientConn per endpoint. It implements
// consumer.Transport.
type Transport struct {
	opts       []triple.ClientOption
	clusterTLS ClusterTLS // nil: clusters asking for TLS cannot be dialled
}

// NewTransport returns a transport whose connections use opts (TLS,
// message sizes, WithApplication for tri-consumer-appname, ...).
func NewTransport(opts ...triple.ClientOption) *Transport { return &Transport{opts: opts} }

// Dial returns a connection to ep; triple dials lazily, on the first call.
func (t *Transport) Dial(_ context.Context, ep *mesh.Endpoint) (consumer.Conn, error) {
	cc, err := triple.Dial(ep.Address, t.opts...)
	if err != nil {
		return nil, err
	}
	return &conn{cc: cc}, nil
}

type conn struct {
	cc *triple.ClientConn
	// last caches the call options of the last group/version seen, so
	// that steady traffic builds them once.
	last atomic.Pointer[callOpts]
}

type callOpts struct {
	group, version string
	opts           []triple.CallOption
}

func (c *conn) callOptions(info *call.Info) []triple.CallOption {
	if l := c.last.Load(); l != nil && l.group == info.Group && l.version == info.Version {
		return l.opts
	}
	co := &callOpts{group: info.Group, version: info.Version}
	if info.Group != "" {
		co.opts = append(co.opts, triple.WithGroup(info.Group))
	}
	if info.Version != "" {
		co.opts = append(co.opts, triple.WithVersion(info.Version))
	}
	c.last.Store(co)
	return co.opts
}

func outgoing(ctx context.Context, a call.Attachments) context.Context {
	if len(a) == 0 {
		return ctx
	}
	md := make(triple.Metadata, len(a))
	for k, v := range a {
		md[k] = []string{v}
	}
	return triple.NewOutgoingContext(ctx, md)
}

// Invoke sends the call; dial failures come back as connect failures
// (call.Error with Connect set), which failover always retries. The
// call's Deadline goes to triple as a call option, which triple enforces
// with a pooled timer and sends as grpc-timeout.
func (c *conn) Invoke(ctx context.Context, info *call.Info, req, resp any) error {
	ctx = outgoing(ctx, info.Attachments)
	opts := c.callOptions(info)
	if rm, ok := ctx.Value(responseMetadataKey{}).(*responseMetadata); ok {
		opts = append(opts[:len(opts):len(opts)], triple.Header(rm.header), triple.Trailer(rm.trailer))
	}
	if info.Deadline.IsZero() {
		return classify(c.cc.Invoke(ctx, info.Path(), req, resp, opts...))
	}
	a := deadlineArgs.Get().(*withDeadline)
	a.dl.At = info.Deadline
	a.opts = append(append(a.opts[:0], opts...), &a.dl)
	err := c.cc.Invoke(ctx, info.Path(), req, resp, a.opts...)
	clear(a.opts)
	deadlineArgs.Put(a)
	return classify(err)
}

var _ consumer.DeadlineConn = (*conn)(nil)

// EnforcesDeadline implements consumer.DeadlineConn: triple ends the call
// at info.Deadline.
func (*conn) EnforcesDeadline() bool { return true }

// withDeadline is a call's options plus its deadline, pooled: triple reads
// options when the call starts, and a reused one saves two allocations
// per call (the option and the slice).
type withDeadline struct {
	dl   triple.Deadline
	opts []triple.CallOption
}

var deadlineArgs = sync.Pool{New: func() any { return &withDeadline{opts: make([]triple.CallOption, 0, 3)} }}

type streamDescKey struct{}

// NewStream opens a stream; the stream descriptor travels in ctx from
// Client.NewStream (unary-shaped descriptor otherwise: bidi).
func (c *conn) NewStream(ctx context.Context, info *call.Info) (filter.ClientStream, error) {
	desc, _ := ctx.Value(streamDescKey{}).(*triple.StreamDesc)
	if desc == nil {
		desc = &triple.StreamDesc{StreamName: info.Method, ClientStreams: true, ServerStreams: true}
	}
	st, err := c.cc.NewStream(outgoing(ctx, info.Attachments), desc, info.Path(), c.callOptions(info)...)
	if err != nil {
		return nil, classify(err)
	}
	return stream{st}, nil
}

// stream is a triple stream that tells the consumer's retries whether the
// provider had answered (cluster.ResponseStarter).
type stream struct{ triple.ClientStream }

// ResponseStarted reports whether response headers arrived before the
// status; asked once RecvMsg has failed, when Header no longer waits. A
// trailers-only answer (a status alone) has no headers.
func (s stream) ResponseStarted() bool {
	_, err := s.Header()
	return err == nil
}

func (c *conn) Close() error { return c.cc.Close() }

func classify(err error) error {
	if err != nil && triple.IsConnectFailure(err) {
		return &call.Error{Code: call.Unavailable, Connect: true, Message: "connect failed", Err: err}
	}
	return err
}

// Client makes a consumer.Reference usable by generated clients: it
// implements triple.Invoker.
type Client struct{ ref *consumer.Reference }

// NewClient wraps ref, e.g. greettriple.NewGreetServiceClient(tri.NewClient(ref)).
func NewClient(ref *consumer.Reference) *Client { return &Client{ref: ref} }

var _ triple.Invoker = (*Client)(nil)

// Invoke routes and balances the call over the reference's providers.
// Outgoing triple metadata becomes attachments. Call options other than
// those the reference sets (group, version) are not supported per call:
// configure them on the Transport.
func (c *Client) Invoke(ctx context.Context, method string, req, reply any, opts ...triple.CallOption) error {
	if len(opts) > 0 {
		return errors.New("tri: per-call options are not supported through a reference; set group and version on the reference and the rest on the Transport")
	}
	return toTriple(c.ref.Invoke(withAttachments(ctx), method, req, reply))
}

type responseMetadataKey struct{}

type responseMetadata struct{ header, trailer *triple.Metadata }

// WithResponseMetadata returns a context whose unary calls through a
// reference fill header and trailer (either may be nil) with the response
// metadata of the attempt that answered last, as triple.Header and
// triple.Trailer do for a direct call (a Client refuses per-call options:
// the reference's routing owns them). A stream exposes its own Header and
// Trailer.
func WithResponseMetadata(ctx context.Context, header, trailer *triple.Metadata) context.Context {
	if header == nil {
		header = new(triple.Metadata)
	}
	if trailer == nil {
		trailer = new(triple.Metadata)
	}
	return context.WithValue(ctx, responseMetadataKey{}, &responseMetadata{header: header, trailer: trailer})
}

// NewStream opens a stream to one provider of the reference.
func (c *Client) NewStream(ctx context.Context, desc *triple.StreamDesc, method string, opts ...triple.CallOption) (triple.ClientStream, error) {
	if len(opts) > 0 {
		return nil, errors.New("tri: per-call options are not supported through a reference; set group and version on the reference and the rest on the Transport")
	}
	st, err := c.ref.NewStream(context.WithValue(withAttachments(ctx), streamDescKey{}, desc), method)
	if err != nil {
		return nil, toTriple(err)
	}
	switch s := st.(type) {
	case triple.ClientStream:
		return s, nil
	case filter.Committer:
		return &routedStream{Committer: s}, nil
	}
	return nil, fmt.Errorf("tri: a client filter replaced the stream with %T, which is not a triple.ClientStream", st)
}

// routedStream is a stream the reference may still retry, as a
// triple.ClientStream: its headers and trailers are those of the attempt
// that answered, and asking for the headers ends the retries.
type routedStream struct{ filter.Committer }

func (s *routedStream) attempt() (triple.ClientStream, error) {
	if ts, ok := s.Commit().(triple.ClientStream); ok {
		return ts, nil
	}
	return nil, triple.NewError(triple.CodeInternal, "tri: a stream attempt is not a triple stream")
}

func (s *routedStream) Header() (triple.Metadata, error) {
	ts, err := s.attempt()
	if err != nil {
		return nil, err
	}
	return ts.Header()
}

func (s *routedStream) Trailer() triple.Metadata {
	ts, err := s.attempt()
	if err != nil {
		return nil
	}
	return ts.Trailer()
}

// RecvMsg and SendMsg keep sdk errors in triple's type, as Invoke does.
func (s *routedStream) RecvMsg(m any) error {
	err := s.Committer.RecvMsg(m)
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	return toTriple(err)
}

func withAttachments(ctx context.Context) context.Context {
	md, ok := triple.FromOutgoingContext(ctx)
	if !ok || len(md) == 0 {
		return ctx
	}
	a := make(call.Attachments, len(md))
	for k, v := range md {
		if len(v) > 0 {
			a.Set(k, v[0])
		}
	}
	return call.WithAttachments(ctx, a)
}

// toTriple turns sdk errors (no provider, failover exhausted) into
// *triple.Error with the same code, so generated-client users see one
// error type; triple errors pass through.
func toTriple(err error) error {
	if err == nil {
		return nil
	}
	var te *triple.Error
	if errors.As(err, &te) {
		return err
	}
	return triple.NewError(triple.Code(call.CodeOf(err)), err.Error())
}

// AppClient is a triple.Invoker for the reference an app configures under
// name, resolved on first use: it can be built (and injected with fx)
// before the app starts, and calls made before Start fail with a clear
// error.
//
//	fx.Provide(func(a *app.App) greettriple.GreetServiceClient {
//		return greettriple.NewGreetServiceClient(tri.AppClient(a, "greeter"))
//	})
func AppClient(a *app.App, name string) triple.Invoker {
	return &appClient{app: a, name: name}
}

type appClient struct {
	app  *app.App
	name string
	c    atomic.Pointer[Client]
}

func (l *appClient) client() (*Client, error) {
	if c := l.c.Load(); c != nil {
		return c, nil
	}
	ref, err := l.app.Reference(l.name)
	if err != nil {
		return nil, triple.NewError(triple.CodeUnavailable, err.Error())
	}
	c := NewClient(ref)
	l.c.CompareAndSwap(nil, c)
	return l.c.Load(), nil
}

func (l *appClient) Invoke(ctx context.Context, method string, req, reply any, opts ...triple.CallOption) error {
	c, err := l.client()
	if err != nil {
		return err
	}
	return c.Invoke(ctx, method, req, reply, opts...)
}

func (l *appClient) NewStream(ctx context.Context, desc *triple.StreamDesc, method string, opts ...triple.CallOption) (triple.ClientStream, error) {
	c, err := l.client()
	if err != nil {
		return nil, err
	}
	return c.NewStream(ctx, desc, method, opts...)
}
