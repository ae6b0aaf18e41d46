package registry

import (
	"context"
	"sync"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// View computes the snapshot for one key from a published state. It is
// called by watchers after each Publish and must not block.
type View func(key Key) *mesh.Snapshot

// Feed is a ready-made way for a Discovery to serve watchers: the
// implementation publishes each new state as a View, and every watcher
// computes its key's snapshot from it and wakes up only when that
// snapshot's revision changed. Implementations give each key's snapshot a
// revision that changes with its content.
//
// A Feed is safe for concurrent use; its zero value is ready.
type Feed struct {
	mu      sync.Mutex
	gen     uint64
	view    View
	changed chan struct{}
	closed  bool
}

func (f *Feed) current() (uint64, View, chan struct{}, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed == nil {
		f.changed = make(chan struct{})
	}
	return f.gen, f.view, f.changed, f.closed
}

// Publish installs a new state and wakes every watcher.
func (f *Feed) Publish(v View) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	f.view = v
	if f.changed != nil {
		close(f.changed)
	}
	f.changed = make(chan struct{})
}

// Close ends every watcher: their Next returns ErrClosed.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	if f.changed != nil {
		close(f.changed)
	}
	f.changed = make(chan struct{})
}

// Watch returns a watcher of key. Its first Next waits for the first
// Publish if there was none yet.
func (f *Feed) Watch(key Key) Watcher {
	return &feedWatcher{feed: f, key: key, done: make(chan struct{})}
}

type feedWatcher struct {
	feed      *Feed
	key       Key
	seen      uint64
	last      *mesh.Snapshot
	done      chan struct{}
	closeOnce sync.Once
}

func (w *feedWatcher) Next(ctx context.Context) (*mesh.Snapshot, error) {
	for {
		select {
		case <-w.done:
			return nil, ErrClosed
		default:
		}
		gen, view, changed, closed := w.feed.current()
		if closed {
			return nil, ErrClosed
		}
		if gen != w.seen && view != nil {
			w.seen = gen
			s := view(w.key)
			if s != nil && (w.last == nil || s.Revision() != w.last.Revision()) {
				w.last = s
				return s, nil
			}
			continue
		}
		select {
		case <-changed:
		case <-w.done:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (w *feedWatcher) Close() error {
	w.closeOnce.Do(func() { close(w.done) })
	return nil
}
