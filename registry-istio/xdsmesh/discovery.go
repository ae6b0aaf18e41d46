package xdsmesh

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// TargetScheme prefixes host-level targets, as in grpc-go: xds:///host:port.
const TargetScheme = "xds:///"

// Discovery serves sdk watchers from an xDS client. It implements
// registry.Discovery for interface names (mapped to hosts by a
// mapping.Scheme), host-level targets and app-level references (a key's
// ProvidedBy, resolved to the application's Service host).
type Discovery struct {
	client    *xdsclient.Client
	logger    *slog.Logger
	scheme    mapping.Scheme
	namespace string
}

// Option configures a Discovery.
type Option func(*Discovery)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(d *Discovery) {
		if l != nil {
			d.logger = l
		}
	}
}

// WithScheme sets the interface-to-host convention (default: the zero
// mapping.Scheme, hosts under shoal.local on port 50051).
func WithScheme(s mapping.Scheme) Option {
	return func(d *Discovery) { d.scheme = s }
}

// WithNamespace sets the namespace app-level references without one
// resolve in (default: the client's node namespace, as for a Kubernetes
// Service name used without a namespace).
func WithNamespace(ns string) Option {
	return func(d *Discovery) { d.namespace = ns }
}

// NewDiscovery returns a Discovery over client. App-level references
// resolve in the namespace and cluster domain of the client's node unless
// WithNamespace or the scheme's ClusterDomain say otherwise.
func NewDiscovery(client *xdsclient.Client, opts ...Option) *Discovery {
	d := &Discovery{client: client, logger: slog.Default()}
	for _, o := range opts {
		o(d)
	}
	node := client.Node()
	if d.namespace == "" {
		d.namespace = node.Namespace()
	}
	if d.scheme.ClusterDomain == "" {
		d.scheme.ClusterDomain = node.ClusterDomain()
	}
	d.logger = d.logger.With("component", "registry-istio/xdsmesh")
	return d
}

var _ registry.Discovery = (*Discovery)(nil)

// Target returns the host:port a key resolves to: a host-level target as
// written; an app-level reference (key.ProvidedBy) as the application's
// Service host (mapping.Scheme.AppTarget), whatever the interface maps to,
// since naming the application is the more explicit of the two; else the
// interface's ServiceEntry host.
func (d *Discovery) Target(key registry.Key) (string, error) {
	isTarget := strings.HasPrefix(key.Interface, TargetScheme) || strings.Contains(key.Interface, ":")
	if key.ProvidedBy != "" {
		if err := key.Validate(); err != nil {
			return "", err
		}
		if isTarget {
			return "", fmt.Errorf("registry-istio: %s is a host-level target and providedBy %q names an application: both say where to go; keep the interface name with providedBy, or the target alone", key.Interface, key.ProvidedBy)
		}
		return d.scheme.AppTarget(key.ProvidedBy, d.namespace)
	}
	if isTarget {
		return ParseTarget(key.Interface)
	}
	return d.scheme.Target(key)
}

// ParseTarget returns the host:port of a host-level target, given as
// "xds:///host:port" or "host:port".
func ParseTarget(s string) (string, error) {
	t := strings.TrimPrefix(s, TargetScheme)
	host, port, err := net.SplitHostPort(t)
	if err != nil || host == "" {
		return "", fmt.Errorf("registry-istio: %q is not a host-level target; write xds:///<host>:<port>, such as xds:///greeter.default.svc.cluster.local:20000", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("registry-istio: target %q: port %q is not 1-65535", s, port)
	}
	return t, nil
}

// Watch watches key. A key.Interface of the form xds:///host:port (or
// host:port) is a host-level target, used as is. A key with ProvidedBy is
// an app-level reference: it watches the application's Service host (see
// Target) and names that host's clusters after the interface, so the
// interface's calls route over it; the call path (/Interface/Method) then
// selects the service on the provider. Any other key is an interface name,
// mapped with its group to the host of the ServiceEntry that carries it
// (see package mapping). The version is not part of the host; it selects
// endpoints by their version label in the caller's routing.
func (d *Discovery) Watch(_ context.Context, key registry.Key) (registry.Watcher, error) {
	target, err := d.Target(key)
	if err != nil {
		return nil, err
	}
	if key.ProvidedBy != "" {
		d.logger.Debug("app-level reference", "interface", key.Interface, "providedBy", key.ProvidedBy, "target", target)
	}
	tw := &targetWatch{
		client:   d.client,
		logger:   d.logger.With("target", target),
		target:   target,
		service:  key.Interface,
		clusters: map[string]*clusterWatch{},
		eds:      map[string]*edsWatch{},
		missing:  "no service of that host and port; check the ServiceEntry or Service that should declare it",
	}
	if key.ProvidedBy != "" {
		tw.missing = fmt.Sprintf("no application %q: create its Kubernetes Service (or a ServiceEntry with host %s), or fix providedBy", key.ProvidedBy, target)
	}
	w := &watcher{Watcher: tw.feed.Watch(key), tw: tw}
	tw.mu.Lock()
	tw.cancelListener = d.client.WatchListener(target, xdsclient.WatcherFuncs[*xdsresource.Listener]{
		OnChanged:  tw.onListener,
		OnError:    tw.onError,
		OnNotFound: tw.onListenerNotFound,
	})
	tw.mu.Unlock()
	return w, nil
}

type watcher struct {
	registry.Watcher
	tw *targetWatch
}

func (w *watcher) Close() error {
	w.tw.close()
	return w.Watcher.Close()
}

type clusterWatch struct {
	cancel   func()
	res      *xdsresource.Cluster
	notFound bool
}

type edsWatch struct {
	cancel func()
	res    *xdsresource.Endpoints
}

// targetWatch follows one target's chain of resources. Its callbacks come
// one at a time from the client; mu guards against Close.
type targetWatch struct {
	client *xdsclient.Client
	logger *slog.Logger
	target string
	// service is the mesh name of the target's own clusters (the key's
	// interface).
	service string
	feed    registry.Feed

	mu             sync.Mutex
	closed         bool
	cancelListener func()
	routeName      string
	cancelRoutes   func()
	routes         *xdsresource.RouteConfig
	clusters       map[string]*clusterWatch
	eds            map[string]*edsWatch
	gen            int
	lastErr        error
	// missing says what to fix when istiod has no such listener.
	missing string
}

func (t *targetWatch) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	t.cancelListener()
	t.dropRoutes()
	t.feed.Close()
}

func (t *targetWatch) dropRoutes() {
	if t.cancelRoutes != nil {
		t.cancelRoutes()
		t.cancelRoutes = nil
	}
	t.routeName, t.routes = "", nil
	t.syncClusters(nil)
}

func (t *targetWatch) onListener(l *xdsresource.Listener) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if l.InlineRouteConfig != nil {
		t.dropRoutes()
		t.routes = l.InlineRouteConfig
		t.routesChanged()
		return
	}
	if l.RouteConfigName == t.routeName {
		return
	}
	t.dropRoutes()
	t.routeName = l.RouteConfigName
	t.cancelRoutes = t.client.WatchRouteConfig(l.RouteConfigName, xdsclient.WatcherFuncs[*xdsresource.RouteConfig]{
		OnChanged: t.onRoutes,
		OnError:   t.onError,
	})
}

func (t *targetWatch) onListenerNotFound() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.dropRoutes()
	// No such service: an empty snapshot, so calls fail with UNAVAILABLE
	// rather than wait.
	t.logger.Warn("istiod does not know the target; calls fail with UNAVAILABLE", "problem", t.missing)
	t.publish(mesh.Spec{})
}

func (t *targetWatch) onRoutes(rc *xdsresource.RouteConfig) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.routes = rc
	t.routesChanged()
}

func (t *targetWatch) routesChanged() {
	vh, err := VirtualHostFor(t.routes, t.target)
	if err != nil {
		t.fail(err)
		t.syncClusters(nil)
		return
	}
	// The default cluster too: it holds all the service's endpoints, which
	// is what a consumer that ignores routes calls.
	t.syncClusters(append(ReferencedClusters(vh), DefaultCluster(t.target)))
	t.rebuild()
}

// syncClusters watches exactly the named clusters.
func (t *targetWatch) syncClusters(names []string) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
		if _, ok := t.clusters[n]; ok {
			continue
		}
		name := n
		cw := &clusterWatch{}
		t.clusters[name] = cw
		cw.cancel = t.client.WatchCluster(name, xdsclient.WatcherFuncs[*xdsresource.Cluster]{
			OnChanged:  func(c *xdsresource.Cluster) { t.onCluster(name, c) },
			OnError:    t.onError,
			OnNotFound: func() { t.onClusterNotFound(name) },
		})
	}
	for n, cw := range t.clusters {
		if !want[n] {
			cw.cancel()
			delete(t.clusters, n)
		}
	}
	t.syncEndpoints()
}

// syncEndpoints watches the EDS names of the known clusters.
func (t *targetWatch) syncEndpoints() {
	want := map[string]bool{}
	for _, cw := range t.clusters {
		if cw.res == nil {
			continue
		}
		name := cw.res.EDSServiceName
		want[name] = true
		if _, ok := t.eds[name]; ok {
			continue
		}
		ew := &edsWatch{}
		t.eds[name] = ew
		ew.cancel = t.client.WatchEndpoints(name, xdsclient.WatcherFuncs[*xdsresource.Endpoints]{
			OnChanged: func(e *xdsresource.Endpoints) { t.onEndpoints(name, e) },
			OnError:   t.onError,
		})
	}
	for n, ew := range t.eds {
		if !want[n] {
			ew.cancel()
			delete(t.eds, n)
		}
	}
}

func (t *targetWatch) onCluster(name string, c *xdsresource.Cluster) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cw, ok := t.clusters[name]
	if t.closed || !ok {
		return
	}
	cw.res, cw.notFound = c, false
	t.syncEndpoints()
	t.rebuild()
}

func (t *targetWatch) onClusterNotFound(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cw, ok := t.clusters[name]
	if t.closed || !ok {
		return
	}
	cw.res, cw.notFound = nil, true
	t.syncEndpoints()
	t.rebuild()
}

func (t *targetWatch) onEndpoints(name string, e *xdsresource.Endpoints) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ew, ok := t.eds[name]
	if t.closed || !ok {
		return
	}
	ew.res = e
	t.rebuild()
}

func (t *targetWatch) onError(err error) {
	t.logger.Warn("xDS update not applied; the last good state stays in use", "error", err)
}

func (t *targetWatch) fail(err error) {
	t.lastErr = err
	t.logger.Warn("cannot translate xDS state for the target; the last good state stays in use", "error", err)
}

// rebuild publishes a snapshot once every referenced resource is known.
func (t *targetWatch) rebuild() {
	if t.routes == nil {
		return
	}
	in := Input{
		Target:    t.target,
		Service:   t.service,
		Routes:    t.routes,
		Clusters:  map[string]*xdsresource.Cluster{},
		Endpoints: map[string]*xdsresource.Endpoints{},
	}
	for n, cw := range t.clusters {
		if cw.res == nil && !cw.notFound {
			return // wait for it
		}
		if cw.res != nil {
			in.Clusters[n] = cw.res
		}
	}
	for n, ew := range t.eds {
		if ew.res == nil {
			return
		}
		in.Endpoints[n] = ew.res
	}
	spec, err := Translate(in)
	if err != nil {
		t.fail(err)
		return
	}
	t.publish(spec)
}

func (t *targetWatch) publish(spec mesh.Spec) {
	t.gen++
	spec.Revision = "xds-" + strconv.Itoa(t.gen)
	snap, err := mesh.NewSnapshot(spec)
	if err != nil {
		t.fail(fmt.Errorf("mesh model rejected the translated state: %w", err))
		return
	}
	t.lastErr = nil
	t.feed.Publish(func(registry.Key) *mesh.Snapshot { return snap })
}
