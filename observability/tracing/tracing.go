package tracing

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/triple"
)

// FilterName names the server filter in filter registries and configuration.
const FilterName = "tracing"

// instrumentation is the tracer's name.
const instrumentation = "github.com/shoalmesh/shoal/observability/tracing"

// Option configures Tracing.
type Option interface{ apply(*Tracing) }

type optionFunc func(*Tracing)

func (f optionFunc) apply(t *Tracing) { f(t) }

// WithTracerProvider sets where spans go (default otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(t *Tracing) { t.tracer = tp.Tracer(instrumentation) })
}

// WithPropagator sets how span contexts travel in headers, both ways,
// instead of [WithFormats]' header formats (by default the client sends
// W3C Trace Context and the server reads W3C and B3).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(t *Tracing) { t.inject, t.extract = p, p })
}

// Tracing records spans for one application.
type Tracing struct {
	tracer          trace.Tracer
	inject, extract propagation.TextMapPropagator
	requestID       bool
	clientStarts    startCache
}

// New returns the tracing of an application.
func New(opts ...Option) *Tracing {
	t := &Tracing{inject: propagation.TraceContext{}, extract: extractor(), requestID: true}
	for _, o := range opts {
		o.apply(t)
	}
	if t.tracer == nil {
		t.tracer = otel.GetTracerProvider().Tracer(instrumentation)
	}
	return t
}

// ClientOptions returns the triple client options that trace calls: pass
// them to tri.NewTransport.
func (t *Tracing) ClientOptions() []triple.ClientOption {
	return []triple.ClientOption{
		triple.WithUnaryClientInterceptors(t.unaryClient),
		triple.WithStreamClientInterceptors(t.streamClient),
	}
}

func (t *Tracing) unaryClient(ctx context.Context, method string, req, reply any, invoker triple.UnaryInvoker, opts ...triple.CallOption) error {
	ctx, span := t.startClient(ctx, method)
	err := invoker(t.outgoing(ctx, span), method, req, reply, opts...)
	endSpan(span, err, true)
	return err
}

func (t *Tracing) streamClient(ctx context.Context, desc *triple.StreamDesc, method string, streamer triple.Streamer, opts ...triple.CallOption) (triple.ClientStream, error) {
	ctx, span := t.startClient(ctx, method)
	cs, err := streamer(t.outgoing(ctx, span), desc, method, opts...)
	if err != nil {
		endSpan(span, err, true)
		return nil, err
	}
	return &clientStream{ClientStream: cs, span: span}, nil
}

func (t *Tracing) startClient(ctx context.Context, method string) (context.Context, trace.Span) {
	s := t.clientStarts.get(method)
	return t.tracer.Start(ctx, s.name, s.opts...)
}

// maxCachedMethods bounds the start options kept per method name.
const maxCachedMethods = 1024

// spanStart is the name and start options of a method's client spans,
// built once (they cost five allocations per call otherwise).
type spanStart struct {
	name string
	opts []trace.SpanStartOption
}

// startCache holds the spanStart of each method called, up to
// maxCachedMethods of them.
type startCache struct {
	m sync.Map // method -> *spanStart
	n atomic.Int32
}

func (c *startCache) get(method string) *spanStart {
	if v, ok := c.m.Load(method); ok {
		return v.(*spanStart)
	}
	name := strings.TrimPrefix(method, "/")
	svc, m, _ := strings.Cut(name, "/")
	s := &spanStart{name: name, opts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", svc), attribute.String("rpc.method", m))}}
	if c.n.Load() < maxCachedMethods {
		if _, loaded := c.m.LoadOrStore(method, s); !loaded {
			c.n.Add(1)
		}
	}
	return s
}

// outgoing adds the span context of ctx and the request ID to the call's
// outgoing metadata, copying what is there (it may be shared with other
// calls). A request ID set in the metadata by the caller stays; otherwise
// it is the one of ctx, or a new one when this call is the first hop.
func (t *Tracing) outgoing(ctx context.Context, span trace.Span) context.Context {
	old, _ := triple.FromOutgoingContext(ctx)
	md := make(triple.Metadata, len(old)+3)
	for k, v := range old {
		md[k] = v
	}
	t.inject.Inject(ctx, metadataCarrier(md))
	if t.requestID {
		id := md.Get(RequestIDHeader)
		if id == "" {
			if id = RequestID(ctx); id == "" {
				id = newRequestID()
			}
			md[RequestIDHeader] = []string{id}
		}
		recordRequestID(span, id)
	}
	return triple.NewOutgoingContext(ctx, md)
}

// recordRequestID puts the request ID on a sampled span, under the tag
// Envoy uses.
func recordRequestID(span trace.Span, id string) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String("guid:x-request-id", id))
	}
}

// clientStream ends its span when the stream ends (RecvMsg fails, io.EOF
// for success).
type clientStream struct {
	triple.ClientStream
	span trace.Span
	done atomic.Bool
}

func (s *clientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil && s.done.CompareAndSwap(false, true) {
		if errors.Is(err, io.EOF) {
			endSpan(s.span, nil, true)
		} else {
			endSpan(s.span, err, true)
		}
	}
	return err
}

// ServerFilter returns the server filter that continues the caller's trace
// with a server span, in the handler's context. Place it before filters
// that log or measure with the trace (a low order).
func (t *Tracing) ServerFilter(order int) filter.Server {
	return filter.Server{
		Name: FilterName, Order: order,
		Unary: func(ctx context.Context, info *call.Info, req any, next filter.UnaryHandler) (any, error) {
			ctx, span := t.startServer(ctx, info)
			resp, err := next(ctx, info, req)
			endSpan(span, err, false)
			return resp, err
		},
		Stream: func(ctx context.Context, info *call.Info, ss filter.ServerStream, next filter.StreamHandler) error {
			ctx, span := t.startServer(ctx, info)
			err := next(ctx, info, ss)
			endSpan(span, err, false)
			return err
		},
	}
}

func (t *Tracing) startServer(ctx context.Context, info *call.Info) (context.Context, trace.Span) {
	return t.serverSpan(ctx, attachmentsCarrier(info.Attachments), info.Service, info.Method)
}

// serverSpan starts the server span of a call whose request headers (or
// attachments) c holds, continuing the caller's trace, and puts the
// caller's request ID, or a new one, in the returned context.
func (t *Tracing) serverSpan(ctx context.Context, c propagation.TextMapCarrier, svc, method string) (context.Context, trace.Span) {
	ctx = t.extract.Extract(ctx, c)
	ctx, span := t.tracer.Start(ctx, svc+"/"+method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", svc), attribute.String("rpc.method", method)))
	if t.requestID {
		id := c.Get(RequestIDHeader)
		if id == "" {
			id = newRequestID()
		}
		ctx = ContextWithRequestID(ctx, id)
		recordRequestID(span, id)
	}
	return ctx, span
}

// ServerOptions returns the triple server options that continue the
// caller's trace with a server span, for a triple.Server used without
// the sdk's application (which takes [Tracing.ServerFilter] instead):
// pass them to triple.NewServer.
func (t *Tracing) ServerOptions() []triple.ServerOption {
	return []triple.ServerOption{
		triple.WithUnaryInterceptors(func(ctx context.Context, req any, info *triple.UnaryServerInfo, h triple.UnaryHandler) (any, error) {
			ctx, span := t.tripleServerSpan(ctx, info.FullMethod)
			resp, err := h(ctx, req)
			endSpan(span, err, false)
			return resp, err
		}),
		triple.WithStreamInterceptors(func(srv any, ss triple.ServerStream, info *triple.StreamServerInfo, h triple.StreamHandler) error {
			ctx, span := t.tripleServerSpan(ss.Context(), info.FullMethod)
			err := h(srv, &serverStream{ServerStream: ss, ctx: ctx})
			endSpan(span, err, false)
			return err
		}),
	}
}

func (t *Tracing) tripleServerSpan(ctx context.Context, fullMethod string) (context.Context, trace.Span) {
	md, _ := triple.FromIncomingContext(ctx)
	svc, m, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	return t.serverSpan(ctx, metadataCarrier(md), svc, m)
}

// serverStream hands the handler the context with the server span.
type serverStream struct {
	triple.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// endSpan records the status and ends span. Per the RPC conventions, a
// client span fails on any non-OK code; a server span only on the codes
// that mean the server failed.
func endSpan(span trace.Span, err error, client bool) {
	code := call.CodeOf(err)
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("rpc.grpc.status_code", int(code)))
	}
	if err != nil && (client || serverFault(code)) {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func serverFault(c call.Code) bool {
	switch c {
	case call.Unknown, call.DeadlineExceeded, call.Unimplemented, call.Internal, call.Unavailable, call.DataLoss:
		return true
	}
	return false
}

// metadataCarrier writes outgoing triple metadata.
type metadataCarrier triple.Metadata

func (c metadataCarrier) Get(key string) string { return triple.Metadata(c).Get(key) }
func (c metadataCarrier) Set(key, value string) { c[strings.ToLower(key)] = []string{value} }
func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// attachmentsCarrier reads a served call's attachments.
type attachmentsCarrier call.Attachments

func (c attachmentsCarrier) Get(key string) string {
	v, _ := call.Attachments(c).Get(key)
	return v
}

func (c attachmentsCarrier) Set(string, string) {}

func (c attachmentsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
