package xdsclient

import (
	"errors"
	"sync"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
)

// Watcher receives the updates of one watched resource. Calls are made one
// at a time, in order, never with the client's lock held. A watcher must not
// call Client.Close from a callback.
type Watcher[T xdsresource.Resource] interface {
	// ResourceChanged delivers a new validated version of the resource (or
	// the cached one, right after the watch starts).
	ResourceChanged(resource T)
	// ResourceError reports that the resource could not be refreshed: a new
	// version was invalid and NACKed, or istiod is unreachable. The last
	// version delivered stays valid and in use.
	ResourceError(err error)
	// ResourceDoesNotExist reports that istiod says the resource is gone
	// (or never existed).
	ResourceDoesNotExist()
}

// WatcherFuncs adapts functions to a Watcher; nil functions are skipped.
type WatcherFuncs[T xdsresource.Resource] struct {
	OnChanged  func(T)
	OnError    func(error)
	OnNotFound func()
}

// ResourceChanged implements Watcher.
func (f WatcherFuncs[T]) ResourceChanged(r T) {
	if f.OnChanged != nil {
		f.OnChanged(r)
	}
}

// ResourceError implements Watcher.
func (f WatcherFuncs[T]) ResourceError(err error) {
	if f.OnError != nil {
		f.OnError(err)
	}
}

// ResourceDoesNotExist implements Watcher.
func (f WatcherFuncs[T]) ResourceDoesNotExist() {
	if f.OnNotFound != nil {
		f.OnNotFound()
	}
}

// watcher is a type-erased Watcher.
type watcher struct {
	changed  func(xdsresource.Resource)
	err      func(error)
	notFound func()
}

func eraseWatcher[T xdsresource.Resource](w Watcher[T]) *watcher {
	return &watcher{
		changed:  func(r xdsresource.Resource) { w.ResourceChanged(r.(T)) },
		err:      w.ResourceError,
		notFound: w.ResourceDoesNotExist,
	}
}

// WatchListener watches the listener name (host:port for istiod) until the
// returned function is called.
func (c *Client) WatchListener(name string, w Watcher[*xdsresource.Listener]) (cancel func()) {
	return c.watch(xdsresource.ListenerType, name, eraseWatcher(w))
}

// WatchRouteConfig watches a route configuration (outbound|port||host).
func (c *Client) WatchRouteConfig(name string, w Watcher[*xdsresource.RouteConfig]) (cancel func()) {
	return c.watch(xdsresource.RouteConfigType, name, eraseWatcher(w))
}

// WatchCluster watches a cluster (outbound|port|subset|host).
func (c *Client) WatchCluster(name string, w Watcher[*xdsresource.Cluster]) (cancel func()) {
	return c.watch(xdsresource.ClusterType, name, eraseWatcher(w))
}

// WatchEndpoints watches a cluster's endpoints (its EDS service name).
func (c *Client) WatchEndpoints(name string, w Watcher[*xdsresource.Endpoints]) (cancel func()) {
	return c.watch(xdsresource.EndpointsType, name, eraseWatcher(w))
}

func (c *Client) watch(t xdsresource.Type, name string, w *watcher) func() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return func() {}
	}
	c.start()
	ts := c.types[t]
	rs, ok := ts.resources[name]
	if !ok {
		rs = &resourceState{name: name, state: StateRequested, watchers: map[*watcher]struct{}{}}
		ts.resources[name] = rs
		c.markDirty(t)
	} else if len(rs.watchers) == 0 {
		// Unwatched but still subscribed: the next request names it again.
		c.markDirty(t)
	}
	rs.watchers[w] = struct{}{}
	switch {
	case rs.resource != nil:
		r := rs.resource
		c.callbacks.schedule(func() { w.changed(r) })
	case rs.state == StateNotFound:
		c.callbacks.schedule(w.notFound)
	case rs.state == StateNACKed:
		// Only an invalid version was ever received: say why.
		err := errors.New(rs.err)
		c.callbacks.schedule(func() { w.err(err) })
	case c.conn.state == TransientFailure:
		// Nothing cached and istiod unreachable: say so rather than wait
		// silently.
		err := errors.New(c.conn.lastError)
		c.callbacks.schedule(func() { w.err(err) })
	}
	c.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { c.unwatch(t, name, w) }) }
}

func (c *Client) unwatch(t xdsresource.Type, name string, w *watcher) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.types[t]
	rs, ok := ts.resources[name]
	if !ok {
		return
	}
	delete(rs.watchers, w)
	if len(rs.watchers) > 0 {
		return
	}
	// The resource stays cached until a request that no longer names it
	// goes out (see pendingRequests): istiod answers a request only when
	// the subscribed names change, so a name that is watched again before
	// then, or that stays subscribed (the last LDS/CDS names), gets no new
	// answer and must be served from the cache.
	c.markDirty(t)
}
