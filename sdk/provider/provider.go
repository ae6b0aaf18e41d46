package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalmesh/shoal/sdk/lifecycle"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// Server serves calls on one listener.
type Server interface {
	// Listen binds and starts serving in the background, returning the
	// bound address (the port is known even when 0 was asked for).
	Listen(ctx context.Context) (net.Addr, error)
	// Shutdown stops accepting calls and waits for those in flight, until
	// ctx ends.
	Shutdown(ctx context.Context) error
}

// Service is one exported interface.
type Service struct {
	registry.Key
	// Weight and Labels are registered with each instance.
	Weight uint32
	Labels map[string]string
	// Servers, if not nil, are the indexes of the servers whose addresses
	// are registered for this service; nil means every server.
	Servers []int
	// Registrars, if not nil, replace the provider's registrars for this
	// service.
	Registrars []registry.Registrar
}

// Option configures a Provider.
type Option interface{ apply(*options) }

type options struct {
	advertiseHost string
	drain         time.Duration
	logger        *slog.Logger
	serving       func(bool)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithAdvertiseHost sets the host registered for consumers to dial. The
// default is the server's bound host, or this machine's first non-loopback
// IPv4 address when it listens on all interfaces (127.0.0.1 if it has none).
func WithAdvertiseHost(h string) Option {
	return optionFunc(func(o *options) { o.advertiseHost = h })
}

// WithDrainDelay sets how long Stop waits between deregistering and
// shutting the servers down, so that consumers learn the instance is gone
// before it stops answering (default 1s).
func WithDrainDelay(d time.Duration) Option { return optionFunc(func(o *options) { o.drain = d }) }

// WithServing is called with true when the provider is registered and
// ready, and with false when it starts to stop: wire it to the health
// service (grpc.health.v1) so probes follow the provider.
func WithServing(f func(serving bool)) Option {
	return optionFunc(func(o *options) { o.serving = f })
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return optionFunc(func(o *options) { o.logger = l }) }

// Provider exports services on servers and registers them.
type Provider struct {
	services   []Service
	servers    []Server
	registrars []registry.Registrar
	opts       options
	log        *slog.Logger

	mu         sync.Mutex
	started    []Server
	registered []registered
	ready      atomic.Bool
}

type registered struct {
	r    registry.Registrar
	inst registry.Instance
}

// New checks the services and returns a provider; nothing starts yet.
func New(services []Service, servers []Server, registrars []registry.Registrar, opts ...Option) (*Provider, error) {
	o := options{drain: time.Second, logger: slog.Default(), serving: func(bool) {}}
	for _, opt := range opts {
		opt.apply(&o)
	}
	var errs []error
	if len(servers) == 0 {
		errs = append(errs, errors.New("provider: no server; give at least one server to export services on"))
	}
	if o.drain < 0 {
		errs = append(errs, fmt.Errorf("provider: negative drain delay %s; use 0 for none", o.drain))
	}
	for i, s := range services {
		inst := registry.Instance{Key: s.Key, Address: "127.0.0.1:1"}
		if err := inst.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("provider: services[%d]: %w", i, err))
		}
		for _, idx := range s.Servers {
			if idx < 0 || idx >= len(servers) {
				errs = append(errs, fmt.Errorf("provider: services[%d].servers: index %d is out of range; there are %d servers", i, idx, len(servers)))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Provider{services: services, servers: servers, registrars: registrars, opts: o, log: o.logger}, nil
}

// Ready reports whether the provider is registered and serving.
func (p *Provider) Ready() bool { return p.ready.Load() }

// Start starts every server, then registers every service on every server
// in every registrar. On failure it undoes what it did.
func (p *Provider) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	addrs := make([]string, 0, len(p.servers))
	for _, s := range p.servers {
		a, err := s.Listen(ctx)
		if err != nil {
			return errors.Join(fmt.Errorf("provider: server did not start: %w", err), p.stopLocked(ctx, false))
		}
		p.started = append(p.started, s)
		addr, err := p.advertise(a)
		if err != nil {
			return errors.Join(err, p.stopLocked(ctx, false))
		}
		addrs = append(addrs, addr)
	}
	for i, addr := range addrs {
		for _, svc := range p.services {
			if svc.Servers != nil && !slices.Contains(svc.Servers, i) {
				continue
			}
			inst := registry.Instance{Key: svc.Key, Address: addr, Weight: svc.Weight, Labels: svc.Labels}
			registrars := p.registrars
			if svc.Registrars != nil {
				registrars = svc.Registrars
			}
			for _, r := range registrars {
				if err := r.Register(ctx, inst); err != nil {
					return errors.Join(fmt.Errorf("provider: register %s at %s: %w", svc.Key, addr, err), p.stopLocked(ctx, false))
				}
				p.registered = append(p.registered, registered{r, inst})
				p.log.Info("provider: registered", "service", svc.String(), "address", addr)
			}
		}
	}
	p.ready.Store(true)
	p.opts.serving(true)
	return nil
}

// Stop deregisters, waits the drain delay, then shuts the servers down,
// in-flight calls finishing within ctx.
func (p *Provider) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopLocked(ctx, true)
}

func (p *Provider) stopLocked(ctx context.Context, drain bool) error {
	p.ready.Store(false)
	p.opts.serving(false)
	var errs []error
	for i := len(p.registered) - 1; i >= 0; i-- {
		reg := p.registered[i]
		if err := reg.r.Deregister(ctx, reg.inst); err != nil {
			errs = append(errs, fmt.Errorf("provider: deregister %s at %s: %w", reg.inst.Key, reg.inst.Address, err))
		}
	}
	if drain && len(p.registered) > 0 && p.opts.drain > 0 {
		t := time.NewTimer(p.opts.drain)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	p.registered = nil
	for i := len(p.started) - 1; i >= 0; i-- {
		if err := p.started[i].Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("provider: server shutdown: %w", err))
		}
	}
	p.started = nil
	return errors.Join(errs...)
}

// Hooks returns the provider's start and stop as one lifecycle hook.
func (p *Provider) Hooks() lifecycle.Hook {
	return lifecycle.Hook{Name: "provider", OnStart: p.Start, OnStop: p.Stop}
}

func (p *Provider) advertise(a net.Addr) (string, error) {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "", fmt.Errorf("provider: server address %q: %w", a, err)
	}
	if p.opts.advertiseHost != "" {
		host = p.opts.advertiseHost
	} else if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = outboundHost()
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", fmt.Errorf("provider: server address %q has no port", a)
	}
	return net.JoinHostPort(host, port), nil
}

// outboundHost returns the first non-loopback IPv4 address, or 127.0.0.1.
func outboundHost() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
