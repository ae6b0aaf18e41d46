package consumer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// state is one discovery snapshot's connections, ready for calls.
// Immutable.
type state struct {
	snap   *mesh.Snapshot
	conns  map[*mesh.Endpoint]*conn
	byAddr map[string]*conn
	latest *atomic.Pointer[state]
}

// conn finds the connection of ep. The engine's balancers outlive states,
// so a call that loaded this state may pick an endpoint of the next one
// while it is being installed: then the latest state has it.
func (s *state) conn(ep *mesh.Endpoint) *conn {
	if c := s.conns[ep]; c != nil {
		return c
	}
	if c := s.byAddr[ep.Address]; c != nil {
		return c
	}
	if l := s.latest.Load(); l != nil {
		return l.byAddr[ep.Address]
	}
	return nil
}

func (r *Reference) loop() {
	defer r.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		snap, err := r.watcher.Next(ctx)
		if err != nil {
			if !errors.Is(err, registry.ErrClosed) && ctx.Err() == nil {
				r.log.Error("consumer: discovery stopped; calls keep the last state", "error", err)
			}
			return
		}
		r.apply(snap)
	}
}

// apply builds the connections for snap, swaps them in, then hands snap
// to the engine.
func (r *Reference) apply(snap *mesh.Snapshot) {
	s := &state{
		snap:   snap,
		conns:  map[*mesh.Endpoint]*conn{},
		byAddr: map[string]*conn{},
		latest: &r.state,
	}
	live := map[string]bool{}
	ready := map[string]bool{}
	for _, c := range snap.Clusters() {
		for _, ep := range c.Ready() {
			ready[ep.Address] = true
		}
		for _, ep := range c.Endpoints() {
			cn := r.pool[ep.Address]
			if cn == nil {
				cn = &conn{ep: ep, transport: r.transport}
				r.pool[ep.Address] = cn
			}
			s.conns[ep] = cn
			s.byAddr[ep.Address] = cn
			live[ep.Address] = true
		}
	}
	r.state.Store(s)
	// After the state: every endpoint the engine can pick has a connection
	// by then.
	if err := r.opts.engine.Update(snap); err != nil {
		r.log.Error("consumer: routing engine rejected the snapshot; it keeps the previous one", "revision", snap.Revision(), "error", err)
	}
	for addr, c := range r.pool {
		if !live[addr] {
			delete(r.pool, addr)
			r.leave(c)
		}
	}
	r.opts.obs.Endpoints(r.key.Interface, len(ready), len(live))
	select {
	case <-r.ready:
	default:
		close(r.ready)
	}
	fresh := make(chan struct{})
	close(*r.changed.Swap(&fresh))
	r.log.Debug("consumer: state updated", "revision", snap.Revision(), "clusters", len(snap.Clusters()), "endpoints", len(live))
}

// conn dials lazily and closes once retired and idle. The call path reads
// only atomics; the mutex guards dialling and closing.
type conn struct {
	ep        *mesh.Endpoint
	transport Transport

	live     atomic.Pointer[liveConn] // set once dialled, until closed
	retired  atomic.Bool
	inflight atomic.Int64

	mu     sync.Mutex
	c      Conn
	closed bool
}

type liveConn struct {
	Conn
	deadlines bool // Conn enforces call.Info.Deadline itself
}

func newLiveConn(c Conn) *liveConn {
	dc, ok := c.(DeadlineConn)
	return &liveConn{Conn: c, deadlines: ok && dc.EnforcesDeadline()}
}

var errRetired = errors.New("endpoint left the cluster")

func (c *conn) get(ctx context.Context, info *call.Info) (*liveConn, error) {
	if l := c.live.Load(); l != nil {
		return l, nil
	}
	if !info.Deadline.IsZero() { // dialling waits within the call's timeout
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, info.Deadline)
		defer cancel()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, &call.Error{Code: call.Unavailable, Connect: true, Message: "connection to " + c.ep.Address + " closed", Err: errRetired}
	}
	if l := c.live.Load(); l != nil {
		return l, nil
	}
	cc, err := c.transport.Dial(ctx, c.ep)
	if err != nil {
		return nil, &call.Error{Code: call.Unavailable, Connect: true, Message: "dial " + c.ep.Address, Err: err}
	}
	c.c = cc
	l := newLiveConn(cc)
	c.live.Store(l)
	return l, nil
}

func (c *conn) invoke(ctx context.Context, info *call.Info, req, resp any) error {
	c.inflight.Add(1)
	defer c.release()
	cc, err := c.get(ctx, info)
	if err != nil {
		return err
	}
	if !cc.deadlines && !info.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, info.Deadline)
		defer cancel()
	}
	return cc.Invoke(ctx, info, req, resp)
}

func (c *conn) newStream(ctx context.Context, info *call.Info) (filter.ClientStream, error) {
	cc, err := c.get(ctx, info)
	if err != nil {
		return nil, err
	}
	return cc.NewStream(ctx, info)
}

func (c *conn) release() {
	if c.inflight.Add(-1) == 0 && c.retired.Load() {
		c.closeIfIdle()
	}
}

// retire marks the endpoint gone: the connection closes now if idle, or
// when its last call ends. A call that picked the endpoint just before it
// left may find the connection closed; it fails as a connect failure, which
// failover retries elsewhere.
func (c *conn) retire() {
	c.retired.Store(true)
	c.closeIfIdle()
}

func (c *conn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.inflight.Load() != 0 {
		return
	}
	c.closed = true
	c.live.Store(nil)
	if c.c != nil {
		_ = c.c.Close()
	}
}
