package triple

import (
	"sync"
	"time"
)

// A unary call bounded by WithTimeout or WithDeadline keeps its caller's
// context and carries the bound in clientStream.deadline instead: waiting
// for a connection or a stream slot watches it directly, and once the
// stream is open one pooled timer resets the stream at the deadline. That
// costs no allocation per call, where context.WithDeadline costs four.

// callTimer fires cs.expire at a call's deadline. It is pooled: a timer
// whose Stop reports it had not fired goes back to the pool; one that fired
// (or is firing) is dropped.
type callTimer struct {
	t  *time.Timer
	mu sync.Mutex
	cs *clientStream
}

var callTimers sync.Pool

func (ct *callTimer) fire() {
	ct.mu.Lock()
	cs := ct.cs
	ct.mu.Unlock()
	if cs != nil {
		cs.expire()
	}
}

// startCallTimer arms a timer that expires cs at its deadline.
func startCallTimer(cs *clientStream) *callTimer {
	d := time.Until(cs.deadline)
	ct, _ := callTimers.Get().(*callTimer)
	if ct == nil {
		ct = &callTimer{cs: cs}
		ct.t = time.AfterFunc(d, ct.fire)
		return ct
	}
	ct.mu.Lock()
	ct.cs = cs
	ct.mu.Unlock()
	ct.t.Reset(d)
	return ct
}

// stop disarms the timer. A late fire finds no stream, or a stream that
// has ended, where expire changes nothing.
func (ct *callTimer) stop() {
	stopped := ct.t.Stop()
	ct.mu.Lock()
	ct.cs = nil
	ct.mu.Unlock()
	if stopped {
		callTimers.Put(ct)
	}
}

// errDeadline is the status of a call whose own deadline passed.
func errDeadline() *Error { return Errorf(CodeDeadlineExceeded, "deadline exceeded") }

// deadlineOf is the deadline the call runs under: its own, else ctx's.
func (cs *clientStream) deadlineOf() (time.Time, bool) {
	if !cs.deadline.IsZero() {
		return cs.deadline, true
	}
	return cs.ctx.Deadline()
}

// expired reports whether the call's own deadline has passed.
func (cs *clientStream) expired() bool {
	return !cs.deadline.IsZero() && !time.Now().Before(cs.deadline)
}

// expire ends the call at its deadline: RST_STREAM(CANCEL) to the server,
// DEADLINE_EXCEEDED to the caller.
func (cs *clientStream) expire() { cs.reset(errDeadline()) }
