package triple

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
)

// The receive buffer of one server connection: a budget of bytes for the
// messages its streams hold (the buffers of partial messages being
// assembled, and whole messages waiting for their handlers), kept with the
// connection's receive window. DESIGN.md, "Receive windows", says why.

// DefaultMaxConnectionBuffer is the receive buffer of one HTTP/2
// connection (see WithMaxConnectionBuffer).
const DefaultMaxConnectionBuffer = 128 << 20

// stuckWindow: with less connection window than this (one DATA frame of
// the largest size the server reads) left to the peer and no room to
// grant more, the peer cannot be counted on to complete a message.
const stuckWindow = 16 << 10

// connBudget keeps held + recvWin <= limit: the bytes the streams hold
// plus the window the peer may still fill never pass the limit, so a peer
// cannot make the connection hold more without a FLOW_CONTROL_ERROR.
// Connection window is returned as the held bytes allow, not as frames
// are read.
type connBudget struct {
	c     *h2Conn
	limit int64 // the buffer, B
	win   int64 // the largest receive window: min(connWindow, limit)

	// recvWin is the window the peer may still fill: the reader takes from
	// it, and grants (under mu) add to it.
	recvWin atomic.Int64

	mu    sync.Mutex
	held  int64 // bytes of message buffers held by the streams (capacity)
	whole int64 // of held, whole messages waiting for their handlers

	failures int // streams failed to make room; reader goroutine only
}

func (b *connBudget) init(c *h2Conn, limit int64) {
	b.c, b.limit = c, limit
	b.win = min(connWindow, limit)
	b.recvWin.Store(b.win)
}

// onData takes a DATA frame of n bytes (padding included) out of the
// window. A peer that sends past it broke flow control.
func (b *connBudget) onData(n int) error {
	if b.recvWin.Add(-int64(n)) < 0 {
		return fmt.Errorf("triple: the peer sent DATA past the connection window: %w", http2.ConnectionError(http2.ErrCodeFlowControl))
	}
	return nil
}

// reserve takes n bytes for a message buffer if the budget has room for
// them beyond the window the peer may still fill.
func (b *connBudget) reserve(n int) bool {
	b.mu.Lock()
	ok := b.held+b.recvWin.Load()+int64(n) <= b.limit
	if ok {
		b.held += int64(n)
	}
	b.mu.Unlock()
	return ok
}

// adjust records bytes the streams took or gave back, and returns window
// to the peer as the budget allows. stuck reports that only partial
// messages hold the budget, with no room left to grant and too little
// window for the peer to complete one: the reader must fail one.
func (b *connBudget) adjust(dHeld, dWhole int) (stuck bool) {
	b.mu.Lock()
	b.held += int64(dHeld)
	b.whole += int64(dWhole)
	win := b.recvWin.Load()
	inc := min(b.win, b.limit-b.held) - win
	stuck = b.whole == 0 && b.held > 0 && win < stuckWindow && inc < stuckWindow
	// Return window in quarters of the full window, or, once the peer
	// has less than a quarter left, as soon as a frame's worth is free.
	// Stuck, whatever is free goes back: a handler that took the last
	// whole message cannot fail a partial one (the reader does, at the
	// next DATA frame), and a peer without window sends none.
	if inc >= b.win/4 || (win < b.win/4 && inc >= stuckWindow) || (stuck && inc > 0) {
		b.recvWin.Add(inc)
	} else {
		inc = 0
	}
	b.mu.Unlock()
	if inc > 0 {
		b.c.queue(ctrlFrame{kind: ctrlWindow, val: uint32(inc)}) // at most win
	}
	return stuck
}

// WithMaxConnectionBuffer bounds the bytes of request messages one HTTP/2
// connection may hold (default 128 MiB): partial messages being received
// and whole ones waiting for their handlers. Past it the server stops
// returning connection window, so the client waits; when only partial
// messages fill it, the largest one fails with RESOURCE_EXHAUSTED so that
// the others can complete. n is raised to the receive message limit plus
// 1 MiB if below, so that a message of the largest size can always
// arrive; 0 keeps the default.
func WithMaxConnectionBuffer(n int) ServerOption {
	return serverOption(func(c *serverConfig) { c.maxConnBuffer = n })
}

// failPartial makes room in a receive buffer that only partial messages
// fill: it fails the stream whose partial message holds the most (of
// equals, the one that received least, then the newest), with
// RESOURCE_EXHAUSTED, frees its buffer and returns the window. A unary
// call's handler starts at once to answer with the status; a streaming
// handler reads it from RecvMsg. Reader goroutine only.
func (sc *h2ServerConn) failPartial() {
	var victim *h2Stream
	var held, got int
	sc.mu.Lock()
	for _, st := range sc.streams {
		h, g := st.recv.partial()
		if h > held || h == held && h > 0 && (g < got || g == got && st.id > victim.id) {
			victim, held, got = st, h, g
		}
	}
	sc.mu.Unlock()
	if victim == nil {
		return
	}
	err := Errorf(CodeResourceExhausted, "the connection's receive buffer of %d bytes is full of partial messages: this one (%d bytes received) was dropped so that others can complete; send fewer large messages at once",
		sc.bud.limit, got)
	if !victim.recv.dropPartial(err) {
		return
	}
	// Counted per connection; Warn at the 1st, 2nd, 4th, 8th... so that a
	// peer cannot flood the log, Debug in between.
	sc.bud.failures++
	level := slog.LevelDebug
	if n := sc.bud.failures; n&(n-1) == 0 {
		level = slog.LevelWarn
	}
	sc.srv.cfg.logger.Log(sc.ctx, level, "triple: failing a stream: the connection's receive buffer is full of partial messages",
		"remote", sc.nc.RemoteAddr().String(), "stream", victim.id, "failures", sc.bud.failures, "buffer", sc.bud.limit, "held", held, "received", got)
	if !victim.ss.started {
		sc.maybeStart(victim.ss)
	}
}

// dropData returns window, as the buffer allows, for a DATA frame the
// server drops (its stream is gone or reset): its bytes count for the
// connection only.
func (sc *h2ServerConn) dropData() {
	if sc.bud.adjust(0, 0) {
		sc.failPartial()
	}
}
