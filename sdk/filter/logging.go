package filter

import (
	"context"
	"log/slog"
	"time"

	"github.com/shoalmesh/shoal/sdk/call"
)

// LoggingName is the name of the built-in logging filters.
const LoggingName = "log"

// ClientLogging returns a client filter that logs every unary call's
// path, status code and duration to l: at debug level when it succeeds, at
// warn level when it fails. It is the model for metrics and tracing
// filters, which observe calls the same way.
func ClientLogging(l *slog.Logger, order int) Client {
	return Client{Name: LoggingName, Order: order, Unary: func(ctx context.Context, info *call.Info, req, resp any, next UnaryInvoker) error {
		start := time.Now()
		err := next(ctx, info, req, resp)
		logCall(ctx, l, "client call", info, start, err)
		return err
	}}
}

// ServerLogging is ClientLogging for the server side.
func ServerLogging(l *slog.Logger, order int) Server {
	return Server{Name: LoggingName, Order: order, Unary: func(ctx context.Context, info *call.Info, req any, next UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := next(ctx, info, req)
		logCall(ctx, l, "server call", info, start, err)
		return resp, err
	}}
}

func logCall(ctx context.Context, l *slog.Logger, msg string, info *call.Info, start time.Time, err error) {
	level := slog.LevelDebug
	if err != nil {
		level = slog.LevelWarn
	}
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("path", info.Path()),
		slog.String("code", call.CodeOf(err).String()),
		slog.Duration("took", time.Since(start)),
	}
	if info.Group != "" {
		attrs = append(attrs, slog.String("group", info.Group))
	}
	if info.Version != "" {
		attrs = append(attrs, slog.String("version", info.Version))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	l.LogAttrs(ctx, level, msg, attrs...)
}
