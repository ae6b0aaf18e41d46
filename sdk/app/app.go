package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/cluster"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/lifecycle"
	"github.com/shoalmesh/shoal/sdk/observer"
	"github.com/shoalmesh/shoal/sdk/provider"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/direct"
	"github.com/shoalmesh/shoal/sdk/registry/file"
	"github.com/shoalmesh/shoal/sdk/router"
)

// BuiltinRegistryKinds lists the registry kinds every app knows: file and
// direct, plus those added to registry.Default.
func BuiltinRegistryKinds() []string {
	return append([]string{file.Name, direct.Name}, registry.Default.Names()...)
}

// BuiltinRegistry returns the builder of a built-in registry kind.
func BuiltinRegistry(kind string) (registry.Builder, error) {
	switch kind {
	case file.Name:
		return file.Builder(), nil
	case direct.Name:
		return direct.Builder(), nil
	}
	return registry.Default.Get(kind)
}

// ServerFactory makes the server for one configured protocol. filters is
// the application's server filter chain, for the server to run around its
// handlers.
type ServerFactory func(p config.Protocol, filters *filter.ServerChain) (provider.Server, error)

// Securer is a registry that also secures the application's traffic as
// its control plane says (registry-istio with params.identity set): New
// asks each configured registry that is one, in configuration order, to
// wrap the server factory and the transport once the registries are built.
// A Securer with nothing to secure returns what it was given.
type Securer interface {
	SecureServers(ServerFactory) (ServerFactory, error)
	SecureTransport(consumer.Transport) (consumer.Transport, error)
}

// Option configures an App.
type Option interface{ apply(*options) }

type options struct {
	logger     *slog.Logger
	builders   *registry.Builders
	balancers  *balancer.Registry
	engines    *router.Engines
	filters    *filter.Registry
	transport  consumer.Transport
	servers    ServerFactory
	drainDelay *time.Duration
	serving    func(bool)
	clientFs   []filter.Client
	serverFs   []filter.Server
	observer   observer.Observer
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger; the default is built from the configuration.
func WithLogger(l *slog.Logger) Option { return optionFunc(func(o *options) { o.logger = l }) }

// WithRegistryBuilders sets where registry kinds are looked up; the default
// holds file, direct and whatever was added to registry.Default.
func WithRegistryBuilders(b *registry.Builders) Option {
	return optionFunc(func(o *options) { o.builders = b })
}

// WithBalancers sets where balancer names are looked up (default
// balancer.Default).
func WithBalancers(r *balancer.Registry) Option {
	return optionFunc(func(o *options) { o.balancers = r })
}

// WithEngines sets where routing engines are looked up by the references'
// router names (default router.DefaultEngines). "service", the trivial
// engine, is always known; a set may replace it with its own.
func WithEngines(e *router.Engines) Option { return optionFunc(func(o *options) { o.engines = e }) }

// WithFilters sets where the configured filter names are looked up.
func WithFilters(r *filter.Registry) Option { return optionFunc(func(o *options) { o.filters = r }) }

// WithObserver sets the observer every reference and its routing engine
// report to (endpoint counts, ejections, overflows, retries, faults); the
// observability module's metrics implement it.
func WithObserver(obs observer.Observer) Option {
	return optionFunc(func(o *options) { o.observer = obs })
}

// WithTransport sets how references reach providers (the Triple client).
func WithTransport(t consumer.Transport) Option {
	return optionFunc(func(o *options) { o.transport = t })
}

// WithServers sets how protocols become servers (the Triple server).
func WithServers(f ServerFactory) Option { return optionFunc(func(o *options) { o.servers = f }) }

// WithClientFilters adds client filters given in code. They are
// registered by name, so the configuration can list them; when the
// configuration lists no client filters, the chain is these filters ordered
// by their Order fields.
func WithClientFilters(fs ...filter.Client) Option {
	return optionFunc(func(o *options) { o.clientFs = append(o.clientFs, fs...) })
}

// WithServerFilters is WithClientFilters for server filters.
func WithServerFilters(fs ...filter.Server) Option {
	return optionFunc(func(o *options) { o.serverFs = append(o.serverFs, fs...) })
}

// WithDrainDelay sets the provider's drain delay, over the configuration's
// application.drainDelay.
func WithDrainDelay(d time.Duration) Option {
	return optionFunc(func(o *options) { o.drainDelay = &d })
}

// WithServing is told when the provider becomes ready and when it stops
// being ready (wire it to the health service).
func WithServing(f func(bool)) Option { return optionFunc(func(o *options) { o.serving = f }) }

// App is an assembled application.
type App struct {
	cfg        *config.Config
	opts       options
	log        *slog.Logger
	registries map[string]registry.Registry
	client     *filter.ClientChain
	server     *filter.ServerChain
	provider   *provider.Provider
	life       *lifecycle.Lifecycle

	mu   sync.Mutex
	refs map[string]*consumer.Reference
}

// New opens the configured registries and checks that every plug-in the
// configuration names exists. Nothing is started and no goroutine runs
// except the registries' own watchers.
func New(cfg *config.Config, opts ...Option) (*App, error) {
	if cfg == nil {
		return nil, errors.New("app: nil configuration; load one with config.Load()")
	}
	o := options{balancers: balancer.Default, engines: router.DefaultEngines, filters: filter.NewRegistry()}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.logger == nil {
		o.logger = cfg.Logger()
	}
	if !o.filters.HasClient(filter.LoggingName) {
		_ = o.filters.RegisterClient(filter.ClientLogging(o.logger, 0))
	}
	if !o.filters.HasServer(filter.LoggingName) {
		_ = o.filters.RegisterServer(filter.ServerLogging(o.logger, 0))
	}
	if o.builders == nil {
		o.builders = registry.NewBuilders(file.Builder(), direct.Builder())
		for _, n := range registry.Default.Names() {
			b, _ := registry.Default.Get(n)
			o.builders.Register(b)
		}
	}

	a := &App{cfg: cfg, opts: o, log: o.logger, registries: map[string]registry.Registry{}, refs: map[string]*consumer.Reference{}, life: lifecycle.New(o.logger)}
	var errs []error
	for _, f := range o.clientFs {
		if err := o.filters.RegisterClient(f); err != nil {
			errs = append(errs, fmt.Errorf("app: client filter: %w", err))
		}
	}
	for _, f := range o.serverFs {
		if err := o.filters.RegisterServer(f); err != nil {
			errs = append(errs, fmt.Errorf("app: server filter: %w", err))
		}
	}
	var err error
	if len(cfg.Filters.Client) == 0 {
		a.client, err = filter.NewClientChain(o.clientFs...)
	} else {
		a.client, err = o.filters.ClientChain(cfg.Filters.Client...)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("app: filters.client: %w", err))
	}
	if len(cfg.Filters.Server) == 0 {
		a.server, err = filter.NewServerChain(o.serverFs...)
	} else {
		a.server, err = o.filters.ServerChain(cfg.Filters.Server...)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("app: filters.server: %w", err))
	}
	for i, r := range cfg.References {
		if _, err := a.balancerFor(r); err != nil {
			errs = append(errs, fmt.Errorf("app: references[%d].balancer: %w", i, err))
		}
		if _, err := a.engineFor(r); err != nil {
			errs = append(errs, fmt.Errorf("app: references[%d].router: %w", i, err))
		}
	}
	if len(cfg.References) > 0 && o.transport == nil {
		errs = append(errs, errors.New("app: references are configured but there is no transport; pass app.WithTransport with the Triple transport"))
	}
	if len(cfg.Services) > 0 && o.servers == nil {
		errs = append(errs, errors.New("app: services are configured but there is no server factory; pass app.WithServers with the Triple server"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, r := range cfg.Registries {
		b, err := o.builders.Get(r.Kind)
		if err != nil {
			errs = append(errs, fmt.Errorf("app: registries[%d].kind: %w", i, err))
			continue
		}
		reg, err := b.Build(context.Background(), registry.Config{Name: r.Name, Address: r.Address, Params: r.Params, Logger: o.logger})
		if err != nil {
			errs = append(errs, fmt.Errorf("app: registries[%d] (%s): %w", i, r.Name, err))
			continue
		}
		a.registries[r.Name] = reg
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(err, a.closeRegistries())
	}
	if err := a.secure(); err != nil {
		return nil, errors.Join(err, a.closeRegistries())
	}
	if len(cfg.Services) > 0 {
		if err := a.buildProvider(); err != nil {
			return nil, errors.Join(err, a.closeRegistries())
		}
		_ = a.life.Append(a.provider.Hooks())
	}
	_ = a.life.Append(lifecycle.Hook{Name: "references", OnStart: a.startReferences, OnStop: a.closeReferences})
	return a, nil
}

// secure lets every registry that is a Securer wrap the server factory
// and the transport.
func (a *App) secure() error {
	for _, r := range a.cfg.Registries {
		s, ok := a.registries[r.Name].(Securer)
		if !ok {
			continue
		}
		if a.opts.servers != nil {
			f, err := s.SecureServers(a.opts.servers)
			if err != nil {
				return fmt.Errorf("app: registry %s: secure the servers: %w", r.Name, err)
			}
			a.opts.servers = f
		}
		if a.opts.transport != nil {
			t, err := s.SecureTransport(a.opts.transport)
			if err != nil {
				return fmt.Errorf("app: registry %s: secure the transport: %w", r.Name, err)
			}
			a.opts.transport = t
		}
	}
	return nil
}

func (a *App) balancerFor(r config.Reference) (balancer.Builder, error) {
	if r.Balancer == balancer.RingHashName && r.HashKey != "" {
		return balancer.RingHash(balancer.WithHashKey(r.HashKey)), nil
	}
	return a.opts.balancers.Get(r.Balancer)
}

// engineFor is the engine builder a reference's router names.
func (a *App) engineFor(r config.Reference) (router.EngineBuilder, error) {
	b, err := a.opts.engines.Get(r.Router)
	if err != nil && r.Router == router.ServiceName {
		return router.ServiceBuilder(), nil
	}
	return b, err
}

func (a *App) buildProvider() error {
	var servers []provider.Server
	index := map[string]int{}
	var errs []error
	for i, p := range a.cfg.Protocols {
		s, err := a.opts.servers(p, a.server)
		if err != nil {
			errs = append(errs, fmt.Errorf("app: protocols[%d] (%s): %w", i, p.Name, err))
			continue
		}
		index[p.Name] = len(servers)
		servers = append(servers, s)
	}
	var services []provider.Service
	var all []registry.Registrar
	for _, r := range a.cfg.Registries {
		all = append(all, a.registries[r.Name])
	}
	for _, s := range a.cfg.Services {
		ps := provider.Service{Key: registry.Key{Interface: s.Interface, Group: s.Group, Version: s.Version}, Weight: s.Weight, Labels: s.Labels}
		for _, name := range s.Protocols {
			ps.Servers = append(ps.Servers, index[name])
		}
		for _, name := range s.Registries {
			ps.Registrars = append(ps.Registrars, a.registries[name])
		}
		services = append(services, ps)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	drain := config.DefaultDrainDelay
	if d := a.cfg.Application.DrainDelay; d != nil {
		drain = time.Duration(*d)
	}
	if a.opts.drainDelay != nil {
		drain = *a.opts.drainDelay
	}
	popts := []provider.Option{provider.WithLogger(a.log), provider.WithDrainDelay(drain)}
	if a.opts.serving != nil {
		popts = append(popts, provider.WithServing(a.opts.serving))
	}
	if h := advertiseHost(a.cfg); h != "" {
		popts = append(popts, provider.WithAdvertiseHost(h))
	}
	p, err := provider.New(services, servers, all, popts...)
	a.provider = p
	return err
}

func (a *App) startReferences(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for i, r := range a.cfg.References {
		ref, err := a.newReference(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("app: references[%d] (%s): %w", i, r.Name, err))
			continue
		}
		a.refs[r.Name] = ref
	}
	if err := errors.Join(errs...); err != nil {
		return errors.Join(err, a.closeReferencesLocked())
	}
	return nil
}

func (a *App) newReference(r config.Reference) (*consumer.Reference, error) {
	var d registry.Discovery
	if r.URL != "" {
		dr, err := direct.New(strings.Split(r.URL, ",")...)
		if err != nil {
			return nil, err
		}
		d = dr
	} else {
		d = a.registries[r.Registry]
	}
	b, _ := a.balancerFor(r)
	strategy := cluster.Failfast()
	if r.Cluster == "failover" {
		strategy = cluster.Failover(cluster.WithRetries(*r.Retries))
	}
	eb, _ := a.engineFor(r)
	opts := []consumer.Option{
		consumer.WithEngine(router.BuildEngine(eb, router.EngineOptions{
			Service: r.Interface, Group: r.Group, Version: r.Version,
			Balancer: b, Balancers: a.opts.balancers, Strategy: strategy,
			SourceLabels: a.cfg.Application.Labels, Logger: a.log, Observer: a.opts.observer,
		})),
		consumer.WithTimeout(time.Duration(r.Timeout)),
		consumer.WithFilters(a.client), consumer.WithLogger(a.log),
		consumer.WithObserver(a.opts.observer),
	}
	if r.WaitForReady {
		opts = append(opts, consumer.WithWaitForReady())
	}
	return consumer.New(registry.Key{Interface: r.Interface, Group: r.Group, Version: r.Version, ProvidedBy: r.ProvidedBy}, d, a.opts.transport, opts...)
}

func (a *App) closeReferences(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closeReferencesLocked()
}

func (a *App) closeReferencesLocked() error {
	var errs []error
	for name, r := range a.refs {
		if err := r.Close(); err != nil && !errors.Is(err, registry.ErrClosed) {
			errs = append(errs, fmt.Errorf("app: close reference %s: %w", name, err))
		}
		delete(a.refs, name)
	}
	return errors.Join(errs...)
}

func (a *App) closeRegistries() error {
	var errs []error
	for name, r := range a.registries {
		if err := r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("app: close registry %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// advertiseHost is the first protocol's advertiseHost; failing that, when
// every registry is a file registry (one machine by construction),
// 127.0.0.1, so that the embedded default never leaves loopback; else ""
// (the provider picks this machine's address).
func advertiseHost(cfg *config.Config) string {
	for _, p := range cfg.Protocols {
		if p.AdvertiseHost != "" {
			return p.AdvertiseHost
		}
	}
	for _, r := range cfg.Registries {
		if r.Kind != file.Name {
			return ""
		}
	}
	return "127.0.0.1"
}

// Config returns the configuration the app was built from.
func (a *App) Config() *config.Config { return a.cfg }

// Logger returns the app's logger.
func (a *App) Logger() *slog.Logger { return a.log }

// ServerFilters returns the server filter chain for the transport to run
// around service handlers.
func (a *App) ServerFilters() *filter.ServerChain { return a.server }

// Registry returns the registry configured under name.
func (a *App) Registry(name string) (registry.Registry, bool) {
	r, ok := a.registries[name]
	return r, ok
}

// Reference returns the started reference configured under name.
func (a *App) Reference(name string) (*consumer.Reference, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.refs[name]
	if !ok {
		if _, configured := a.cfg.Reference(name); configured {
			return nil, fmt.Errorf("app: reference %q is not started; call Start first", name)
		}
		names := make([]string, 0, len(a.cfg.References))
		for _, c := range a.cfg.References {
			names = append(names, c.Name)
		}
		return nil, fmt.Errorf("app: no reference named %q; configured: %s", name, strings.Join(names, ", "))
	}
	return r, nil
}

// Ready reports whether the provider (if any) is registered and serving.
func (a *App) Ready() bool { return a.provider == nil || a.provider.Ready() }

// Start starts the servers, registers the services and starts the
// references.
func (a *App) Start(ctx context.Context) error { return a.life.Start(ctx) }

// Stop deregisters, drains and stops the servers, closes the references
// and then the registries.
func (a *App) Stop(ctx context.Context) error {
	return errors.Join(a.life.Stop(ctx), a.closeRegistries())
}

// Run starts the app, waits for SIGINT/SIGTERM or ctx, and stops it within
// stopTimeout (0: the configuration's application.shutdownTimeout).
func (a *App) Run(ctx context.Context, stopTimeout time.Duration) error {
	if stopTimeout <= 0 {
		stopTimeout = time.Duration(a.cfg.Application.ShutdownTimeout)
	}
	err := lifecycle.Run(ctx, a.life, stopTimeout)
	return errors.Join(err, a.closeRegistries())
}
