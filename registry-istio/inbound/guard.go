package inbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
)

// Option configures a Guard.
type Option interface{ apply(*config) }

type config struct {
	logger *slog.Logger
	host   string
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// WithHost sets the IP a listener bound to all interfaces is known to istiod
// by (default: the IP in the xDS node ID, which is INSTANCE_IP).
func WithHost(ip string) Option { return optionFunc(func(c *config) { c.host = ip }) }

// Guard applies istiod's inbound listeners to the servers of one process.
type Guard struct {
	client *xdsclient.Client
	src    *identity.Source
	cfg    config

	mu     sync.Mutex
	byPort map[int]*Watcher
	closed bool
}

// New returns a guard that watches listeners on c. src provides the server
// certificate and the mesh root under mutual TLS; without one (nil), a
// STRICT listener makes the server refuse every connection, saying why.
func New(c *xdsclient.Client, src *identity.Source, opts ...Option) *Guard {
	cfg := config{logger: slog.Default()}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.host == "" {
		cfg.host = nodeIP(c.Node())
	}
	return &Guard{client: c, src: src, cfg: cfg, byPort: map[int]*Watcher{}}
}

// nodeIP is the workload IP of a proxyless node: sidecar~<ip>~<pod>.<ns>~...
func nodeIP(n bootstrap.Node) string {
	if p := strings.Split(n.ID, "~"); len(p) == 4 {
		return p[1]
	}
	return ""
}

// ServingAddress is the ip:port istiod knows a listener bound to addr by:
// addr itself, or the guard's host for an unspecified IP.
func (g *Guard) ServingAddress(addr net.Addr) (string, error) {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return "", fmt.Errorf("inbound: listener address %s is not ip:port: %w", addr, err)
	}
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() {
		if g.cfg.host == "" {
			return "", fmt.Errorf("inbound: the listener on %s is bound to all interfaces and the node names no IP; set INSTANCE_IP or use inbound.WithHost", addr)
		}
		return net.JoinHostPort(g.cfg.host, strconv.Itoa(int(ap.Port()))), nil
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(ap.Port()))), nil
}

// Listen starts watching the inbound listener of lis's address and returns
// lis wrapped: Accept waits for istiod's first answer, then hands out
// connections as the current listener says (TLS under STRICT).
func (g *Guard) Listen(lis net.Listener) (net.Listener, error) {
	addr, err := g.ServingAddress(lis.Addr())
	if err != nil {
		return nil, err
	}
	ap, _ := netip.ParseAddrPort(lis.Addr().String()) // checked by ServingAddress
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errors.New("inbound: the guard is closed")
	}
	if _, dup := g.byPort[int(ap.Port())]; dup {
		return nil, fmt.Errorf("inbound: port %d is already guarded", ap.Port())
	}
	w := watch(g.client, addr, g.src, g.cfg.logger)
	g.byPort[int(ap.Port())] = w
	return &listener{Listener: lis, w: w, done: make(chan struct{})}, nil
}

// Watcher returns the watcher of a guarded port, if any.
func (g *Guard) Watcher(port int) *Watcher {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.byPort[port]
}

// Close stops every watch. Servers should be shut down first.
func (g *Guard) Close() {
	g.mu.Lock()
	ws := g.byPort
	g.byPort, g.closed = map[int]*Watcher{}, true
	g.mu.Unlock()
	for _, w := range ws {
		w.close()
	}
}

// UnaryServerInterceptor checks every unary call (see Authorize).
func (g *Guard) UnaryServerInterceptor() triple.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *triple.UnaryServerInfo, h triple.UnaryHandler) (any, error) {
		if err := g.Authorize(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// StreamServerInterceptor checks every streaming call (see Authorize).
func (g *Guard) StreamServerInterceptor() triple.StreamServerInterceptor {
	return func(srv any, ss triple.ServerStream, info *triple.StreamServerInfo, h triple.StreamHandler) error {
		if err := g.Authorize(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return h(srv, ss)
	}
}

// Authorize checks a call on a guarded server against the current inbound
// listener of the port it arrived on: UNAVAILABLE while not serving,
// UNAUTHENTICATED for a plaintext connection under STRICT,
// PERMISSION_DENIED when an RBAC policy refuses it.
func (g *Guard) Authorize(ctx context.Context, fullMethod string) error {
	p, ok := triple.PeerFromContext(ctx)
	if !ok || p.LocalAddr == nil {
		return triple.Errorf(triple.CodePermissionDenied, "inbound: the call carries no connection information; serve it with a Triple server")
	}
	local, ok := addrPort(p.LocalAddr)
	if !ok {
		return triple.Errorf(triple.CodePermissionDenied, "inbound: local address %s is not ip:port", p.LocalAddr)
	}
	w := g.Watcher(int(local.Port()))
	if w == nil {
		return triple.Errorf(triple.CodePermissionDenied, "inbound: port %d is not guarded: wrap its listener with Guard.Listen", local.Port())
	}
	return w.authorize(ctx, &p, local, fullMethod)
}

// addrPort converts a connection address without formatting a TCP one.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}

// FilterName is the name of the guard's server filter.
const FilterName = "istio-inbound"

// ServerFilter is the guard's check (see Authorize) as an sdk server
// filter, for an app's server chain: put it first
// (filter.ServerChain.Prepend), so that no other filter runs on a call the
// guard refuses. registry-istio's Registry does this when it secures an
// app's servers.
func (g *Guard) ServerFilter() filter.Server {
	return filter.Server{
		Name: FilterName,
		Unary: func(ctx context.Context, info *call.Info, req any, next filter.UnaryHandler) (any, error) {
			if err := g.Authorize(ctx, "/"+info.Service+"/"+info.Method); err != nil {
				return nil, err
			}
			return next(ctx, info, req)
		},
		Stream: func(ctx context.Context, info *call.Info, ss filter.ServerStream, next filter.StreamHandler) error {
			if err := g.Authorize(ctx, "/"+info.Service+"/"+info.Method); err != nil {
				return err
			}
			return next(ctx, info, ss)
		},
	}
}
