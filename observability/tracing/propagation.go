package tracing

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/propagation"
)

// Format is a set of trace context header formats, the ones the client
// side sends. The server side reads all of them.
type Format uint8

// The header formats.
const (
	// W3C is W3C Trace Context: traceparent and tracestate. Apache Dubbo
	// 3.3's tracing reads and writes it by default.
	W3C Format = 1 << iota
	// B3Single is B3's single header, b3 (Dubbo's tracing with
	// propagation type B3 writes this one).
	B3Single
	// B3Multi is B3's multiple headers, x-b3-traceid, x-b3-spanid and
	// x-b3-sampled (what Envoy and Zipkin's instrumentation send).
	B3Multi
)

// RequestIDHeader is the request ID header Envoy generates at the edge
// and every hop passes on.
const RequestIDHeader = "x-request-id"

// WithFormats sets the header formats the client side sends (default
// W3C; W3C|B3Multi to speak to both W3C and Zipkin/Envoy peers). The
// server side reads W3C, single B3 and multiple B3 headers whatever this
// says; when a call carries both, W3C wins, since it also carries
// tracestate. A zero Format sends no trace context.
func WithFormats(f Format) Option {
	return optionFunc(func(t *Tracing) { t.inject = injector(f) })
}

// WithoutRequestID stops handling x-request-id (see [RequestID]).
func WithoutRequestID() Option {
	return optionFunc(func(t *Tracing) { t.requestID = false })
}

// injector is the propagator that sends the formats of f.
func injector(f Format) propagation.TextMapPropagator {
	var ps []propagation.TextMapPropagator
	if f&(B3Single|B3Multi) != 0 {
		var enc b3.Encoding
		if f&B3Single != 0 {
			enc |= b3.B3SingleHeader
		}
		if f&B3Multi != 0 {
			enc |= b3.B3MultipleHeader
		}
		ps = append(ps, b3.New(b3.WithInjectEncoding(enc)))
	}
	if f&W3C != 0 {
		ps = append(ps, propagation.TraceContext{})
	}
	if len(ps) == 1 {
		return ps[0]
	}
	return propagation.NewCompositeTextMapPropagator(ps...)
}

// extractor reads every supported format: B3 first, so that W3C Trace
// Context, read last, wins when a call carries both.
func extractor() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(b3.New(), propagation.TraceContext{})
}

type requestIDKey struct{}

// RequestID returns the request ID of ctx: on the server side the
// caller's x-request-id, or the one generated for a caller that sent none
// (this service is then the edge); "" outside a traced call.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// ContextWithRequestID returns ctx carrying id as the request ID that
// outgoing calls pass on (an HTTP gateway in front of Shoal sets the one
// it received).
func ContextWithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// newRequestID returns a random (version 4) UUID, the form Envoy
// generates.
func newRequestID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}
