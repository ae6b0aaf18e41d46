package accesslog

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
)

// FilterName names the filters in filter registries and configuration.
const FilterName = "accesslog"

// Option configures a Log.
type Option interface{ apply(*Log) }

type optionFunc func(*Log)

func (f optionFunc) apply(l *Log) { f(l) }

// WithEvery logs one successful call in n (default 1: every call).
// Failed calls are always logged.
func WithEvery(n int) Option { return optionFunc(func(l *Log) { l.every = uint64(n) }) }

// WithLevel sets the level of the lines (default slog.LevelInfo).
func WithLevel(level slog.Level) Option { return optionFunc(func(l *Log) { l.level = level }) }

// Log is an access log.
type Log struct {
	logger *slog.Logger
	every  uint64
	level  slog.Level
	seq    atomic.Uint64
}

// New returns an access log writing to logger.
func New(logger *slog.Logger, opts ...Option) (*Log, error) {
	l := &Log{logger: logger, every: 1, level: slog.LevelInfo}
	for _, o := range opts {
		o.apply(l)
	}
	if logger == nil {
		return nil, errors.New("accesslog: no logger; pass slog.Default() or your own")
	}
	if l.every == 0 {
		return nil, errors.New("accesslog: WithEvery(0); use 1 to log every call, n to log one in n")
	}
	return l, nil
}

// ClientFilter logs the calls an application makes (unary calls; streams
// are not logged yet).
func (l *Log) ClientFilter(order int) filter.Client {
	return filter.Client{Name: FilterName, Order: order, Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
		start := time.Now()
		err := next(ctx, info, req, resp)
		l.write(ctx, "outbound", info, start, err)
		return err
	}}
}

// ServerFilter logs the calls an application serves, unary and streams.
func (l *Log) ServerFilter(order int) filter.Server {
	return filter.Server{
		Name: FilterName, Order: order,
		Unary: func(ctx context.Context, info *call.Info, req any, next filter.UnaryHandler) (any, error) {
			start := time.Now()
			resp, err := next(ctx, info, req)
			l.write(ctx, "inbound", info, start, err)
			return resp, err
		},
		Stream: func(ctx context.Context, info *call.Info, ss filter.ServerStream, next filter.StreamHandler) error {
			start := time.Now()
			err := next(ctx, info, ss)
			l.write(ctx, "inbound", info, start, err)
			return err
		},
	}
}

func (l *Log) write(ctx context.Context, direction string, info *call.Info, start time.Time, err error) {
	took := time.Since(start)
	if err == nil && (l.seq.Add(1)-1)%l.every != 0 {
		return
	}
	if !l.logger.Enabled(ctx, l.level) {
		return
	}
	code := call.CodeOf(err)
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs,
		slog.String("direction", direction),
		slog.String("path", info.Path()),
		slog.String("grpc_status", code.String()),
		slog.Duration("duration", took))
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	if direction == "inbound" {
		if v, ok := info.Attachments.Get(peer.HeaderMetadata); ok {
			if w, err := peer.Decode(v); err == nil {
				attrs = append(attrs, slog.String("peer_workload", w.WorkloadName), slog.String("peer_namespace", w.Namespace))
			}
		}
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	l.logger.LogAttrs(ctx, l.level, "access", attrs...)
}
