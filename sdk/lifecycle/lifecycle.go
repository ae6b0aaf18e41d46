package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Hook is one part's start and stop. Either function may be nil.
type Hook struct {
	// Name appears in logs and errors.
	Name    string
	OnStart func(ctx context.Context) error
	OnStop  func(ctx context.Context) error
}

// Lifecycle is an ordered list of hooks. It is safe for concurrent use.
type Lifecycle struct {
	mu      sync.Mutex
	hooks   []Hook
	started int // hooks[:started] have started
	running bool
	log     *slog.Logger
}

// New returns an empty lifecycle logging to l (nil: slog.Default()).
func New(l *slog.Logger) *Lifecycle {
	if l == nil {
		l = slog.Default()
	}
	return &Lifecycle{log: l}
}

// Append adds a hook after the others. Hooks cannot be added while the
// lifecycle runs.
func (l *Lifecycle) Append(h Hook) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running {
		return fmt.Errorf("lifecycle: cannot add hook %q after Start; add every hook before starting", h.Name)
	}
	l.hooks = append(l.hooks, h)
	return nil
}

// Start runs the OnStart hooks in order. If one fails, the started hooks
// are stopped in reverse and the joined errors are returned.
func (l *Lifecycle) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running {
		return errors.New("lifecycle: already started")
	}
	l.running = true
	for i, h := range l.hooks {
		if h.OnStart != nil {
			begin := time.Now()
			if err := h.OnStart(ctx); err != nil {
				err = fmt.Errorf("lifecycle: start %s: %w", h.Name, err)
				l.log.Error("lifecycle: start failed; stopping what started", "hook", h.Name, "error", err)
				return errors.Join(err, l.stopLocked(ctx))
			}
			l.log.Debug("lifecycle: started", "hook", h.Name, "took", time.Since(begin))
		}
		l.started = i + 1
	}
	return nil
}

// Stop runs the OnStop hooks of the started hooks in reverse order. It
// goes on after a failure and returns every error, joined.
func (l *Lifecycle) Stop(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopLocked(ctx)
}

func (l *Lifecycle) stopLocked(ctx context.Context) error {
	var errs []error
	for i := l.started - 1; i >= 0; i-- {
		h := l.hooks[i]
		if h.OnStop == nil {
			continue
		}
		if err := h.OnStop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("lifecycle: stop %s: %w", h.Name, err))
			l.log.Error("lifecycle: stop failed; stopping the rest", "hook", h.Name, "error", err)
		}
	}
	l.started = 0
	l.running = false
	return errors.Join(errs...)
}

// SignalContext returns a context canceled on SIGINT or SIGTERM; call stop
// to release the signal handler.
func SignalContext(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// Run starts l, waits until ctx ends or the process gets SIGINT/SIGTERM,
// then stops l within stopTimeout (0 means 30s). It returns the start
// error, or the stop error.
func Run(ctx context.Context, l *Lifecycle, stopTimeout time.Duration) error {
	if stopTimeout <= 0 {
		stopTimeout = 30 * time.Second
	}
	sigCtx, stop := SignalContext(ctx)
	defer stop()
	if err := l.Start(sigCtx); err != nil {
		return err
	}
	<-sigCtx.Done()
	l.log.Info("lifecycle: stopping", "reason", context.Cause(sigCtx))
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	return l.Stop(stopCtx)
}
