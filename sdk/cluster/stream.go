package cluster

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
)

// ResponseStarter is optional on a stream attempt (tri's streams have it):
// once RecvMsg has returned an error, ResponseStarted reports whether the
// provider had sent response headers before that status. A provider that
// sent headers has committed to its answer; one that answered with a
// status alone (gRPC's trailers-only response) has not, and the stream may
// be retried elsewhere.
type ResponseStarter interface {
	ResponseStarted() bool
}

// NewStream opens a stream on an endpoint picked from t and returns it.
// As grpc-go retries streams, the stream is tried again on another
// endpoint, within the strategy's retries and retryOn, while nothing has
// come back from the provider: the messages sent so far are kept (up to
// the stream buffer, DefaultStreamBuffer by default) and sent again in
// order, with CloseSend if the caller had called it. The stream commits,
// and is never retried again, once a message or response headers arrive,
// once the caller asks for them (filter.Committer), or once the kept
// messages would exceed the buffer. Each attempt's end reaches the pick's
// Done and t's TryObserver with its status.
//
// end, if not nil, is called once when the stream is over: its status is
// known (nil for a clean end), opening failed, or ctx ended. A caller must
// read the stream until RecvMsg fails or cancel ctx, as with gRPC.
func (s *Strategy) NewStream(ctx context.Context, info *call.Info, t Target, open StreamOpener, end func(error)) (filter.ClientStream, error) {
	rs := &retryStream{s: s, ctx: ctx, info: info, open: open, end: end, c: tries{s: s, t: t}}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if err := rs.openLocked(); err != nil {
		rs.finishLocked(err)
		return nil, err
	}
	rs.stop = context.AfterFunc(ctx, func() { rs.finish(ctx.Err()) })
	return rs, nil
}

var _ filter.Committer = (*retryStream)(nil)

type attempt struct{ p atomic.Pointer[streamRef] }

type streamRef struct{ st filter.ClientStream }

func (a *attempt) load() filter.ClientStream    { return a.p.Load().st }
func (a *attempt) store(st filter.ClientStream) { a.p.Store(&streamRef{st: st}) }

type retryStream struct {
	s    *Strategy
	ctx  context.Context
	info *call.Info
	open StreamOpener
	end  func(error)
	stop func() bool

	// cur is the attempt in use; RecvMsg reads it without the lock, so
	// that a SendMsg waiting for flow control does not hold it up.
	cur attempt

	mu         sync.Mutex // orders sends, replays and retries
	c          tries
	pick       balancer.PickResult // the attempt in use; Endpoint nil once reported
	committed  bool
	buf        []any // sent messages, kept for a retry until committed
	size       int
	closeSent  bool
	sendBroken bool // the attempt in use failed on send: its status comes from RecvMsg
	finished   bool
}

// openLocked picks endpoints and opens attempts until one opens or the
// tries give up, then replays what the caller sent.
func (rs *retryStream) openLocked() error {
	for {
		p, err := rs.c.pick(rs.ctx, rs.info)
		if err != nil {
			return rs.c.giveUp(rs.info, err)
		}
		st, err := rs.open(rs.ctx, p.Endpoint, rs.info)
		if err == nil {
			rs.cur.store(st)
			rs.pick, rs.sendBroken = p, false
			rs.replayLocked()
			return nil
		}
		rs.c.done(p, err)
		if !rs.c.again(rs.ctx, rs.info, err, false) {
			return rs.c.result(rs.info)
		}
	}
}

func (rs *retryStream) replayLocked() {
	for _, m := range rs.buf {
		if err := rs.cur.load().SendMsg(m); err != nil {
			rs.sendBroken = true // RecvMsg tells why
			return
		}
	}
	if rs.closeSent {
		_ = rs.cur.load().CloseSend()
	}
}

func (rs *retryStream) Context() context.Context { return rs.ctx }

func (rs *retryStream) SendMsg(m any) error {
	rs.mu.Lock()
	if rs.committed {
		rs.mu.Unlock()
		return rs.cur.load().SendMsg(m)
	}
	defer rs.mu.Unlock()
	n, ok := messageSize(m)
	if !ok || rs.size+n > rs.s.maxBuffer {
		rs.commitLocked() // too much to replay: this attempt is the last
		if rs.sendBroken {
			return io.EOF
		}
		return rs.cur.load().SendMsg(m)
	}
	rs.buf = append(rs.buf, m)
	rs.size += n
	if rs.sendBroken {
		return nil // kept for the retry that RecvMsg may make
	}
	err := rs.cur.load().SendMsg(m)
	if errors.Is(err, io.EOF) {
		rs.sendBroken = true
		return nil
	}
	if err != nil {
		rs.buf = rs.buf[:len(rs.buf)-1] // not sent (it did not encode): not replayed either
		rs.size -= n
	}
	return err
}

func (rs *retryStream) CloseSend() error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.closeSent = true
	if rs.sendBroken && !rs.committed {
		return nil
	}
	return rs.cur.load().CloseSend()
}

func (rs *retryStream) RecvMsg(m any) error {
	for {
		cur := rs.cur.load()
		err := cur.RecvMsg(m)
		if err == nil {
			rs.Commit()
			return nil
		}
		if errors.Is(err, io.EOF) {
			rs.finish(nil)
			return err
		}
		rs.mu.Lock()
		again, rerr := rs.retryLocked(cur, err)
		rs.mu.Unlock()
		if !again {
			rs.finish(rerr)
			return rerr
		}
	}
}

// retryLocked decides, after the attempt cur failed with err, whether the
// stream goes on with a new attempt, and opens it. When it does not, it
// returns the stream's error.
func (rs *retryStream) retryLocked(cur filter.ClientStream, err error) (bool, error) {
	if rs.committed || rs.finished || responseStarted(cur, err) {
		return false, err
	}
	rs.c.done(rs.pick, err)
	rs.pick = balancer.PickResult{}
	if !rs.c.again(rs.ctx, rs.info, err, false) {
		return false, err
	}
	if oerr := rs.openLocked(); oerr != nil {
		return false, oerr
	}
	return true, nil
}

func responseStarted(cur filter.ClientStream, err error) bool {
	if call.IsConnectFailure(err) {
		return false
	}
	if r, ok := cur.(ResponseStarter); ok {
		return r.ResponseStarted()
	}
	return true // cannot tell: assume the provider answered
}

// Commit ends retrying and returns the attempt in use, for what only it
// knows (response headers and trailers).
func (rs *retryStream) Commit() filter.ClientStream {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.commitLocked()
	return rs.cur.load()
}

func (rs *retryStream) commitLocked() {
	rs.committed = true
	rs.buf, rs.size = nil, 0
}

// finish reports the stream's end once: the attempt in use to the target,
// the retry place back, and end.
func (rs *retryStream) finish(err error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.finishLocked(err)
}

func (rs *retryStream) finishLocked(err error) {
	if rs.finished {
		return
	}
	rs.finished = true
	rs.commitLocked()
	if rs.pick.Endpoint != nil {
		rs.c.done(rs.pick, err)
		rs.pick = balancer.PickResult{}
	}
	rs.c.release()
	if rs.stop != nil {
		rs.stop()
	}
	if rs.end != nil {
		rs.end(err)
	}
}
