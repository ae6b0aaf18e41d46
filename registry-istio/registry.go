package registryistio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// Name is the registry kind in shoal.yaml.
const Name = "istio"

// DefaultRegisterTimeout bounds Register when its context has no deadline.
const DefaultRegisterTimeout = 30 * time.Second

// Registry is an sdk registry backed by istiod: Watch discovers through
// xDS, Register confirms through xDS that istiod serves the provider under
// its interface's host. Create it with New or through Builder.
type Registry struct {
	client *xdsclient.Client
	disc   *xdsmesh.Discovery
	scheme mapping.Scheme
	logger *slog.Logger

	pub *Publisher // nil: the mapping is declared (GitOps), not published
	app string     // the application Publish names

	mu         sync.Mutex
	registered map[registry.Key]bool
}

var _ registry.Registry = (*Registry)(nil)

// Option configures a Registry.
type Option func(*options)

type options struct {
	scheme     mapping.Scheme
	logger     *slog.Logger
	clientOpts []xdsclient.Option
	pub        *Publisher
	app        string
}

// WithPublisher makes Register publish the application's interface mapping
// (its ServiceEntry) through p before it waits for istiod to serve it, and
// Deregister withdraw it when the last interface leaves. app names the
// application (its app label, which the ServiceEntry selects).
func WithPublisher(p *Publisher, app string) Option {
	return func(o *options) { o.pub, o.app = p, app }
}

// WithScheme sets the interface-to-host convention (default mapping.Scheme{}).
func WithScheme(s mapping.Scheme) Option { return func(o *options) { o.scheme = s } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClientOptions passes options to the xDS client.
func WithClientOptions(opts ...xdsclient.Option) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// New returns a registry talking to the istiod cfg names.
func New(cfg *bootstrap.Config, opts ...Option) (*Registry, error) {
	o := options{logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	c, err := xdsclient.New(cfg, append([]xdsclient.Option{xdsclient.WithLogger(o.logger)}, o.clientOpts...)...)
	if err != nil {
		return nil, err
	}
	if o.pub != nil && o.app == "" {
		return nil, errors.New("registry-istio: publishing needs the application name; set the app label (ISTIO_METAJSON_LABELS) or registry param app")
	}
	return &Registry{
		client:     c,
		disc:       xdsmesh.NewDiscovery(c, xdsmesh.WithLogger(o.logger), xdsmesh.WithScheme(o.scheme)),
		scheme:     o.scheme,
		logger:     o.logger.With("component", "registry-istio"),
		pub:        o.pub,
		app:        o.app,
		registered: map[registry.Key]bool{},
	}, nil
}

// Client returns the xDS client, for its Status.
func (r *Registry) Client() *xdsclient.Client { return r.client }

// Watch implements registry.Discovery: by interface name (and group), or by
// an xds:///host:port target.
func (r *Registry) Watch(ctx context.Context, key registry.Key) (registry.Watcher, error) {
	return r.disc.Watch(ctx, key)
}

// Register makes inst's interface reachable through istiod and waits until
// it is: istiod serves inst.Address under the host of inst's interface and
// group, which proves a ServiceEntry carries the interface and selects this
// workload. With a Publisher (WithPublisher, or Builder when Kubernetes is
// reachable) it first publishes that ServiceEntry; without one the entry
// is declared ahead of time (mapping.Manifest, the CLI's chart) and
// Register checks it is in effect, failing with what to apply if that does
// not happen before ctx ends (or DefaultRegisterTimeout without a
// deadline). It also announces this process to istiod (Client.Connect,
// which runs WorkloadEntry auto-registration when the node names a
// WorkloadGroup).
func (r *Registry) Register(ctx context.Context, inst registry.Instance) error {
	if err := inst.Validate(); err != nil {
		return err
	}
	target, err := r.scheme.Target(inst.Key)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRegisterTimeout)
		defer cancel()
	}
	if r.pub != nil {
		if err := r.publish(ctx, inst); err != nil {
			return err
		}
	}
	r.client.Connect()
	w, err := r.disc.Watch(ctx, registry.Key{Interface: xdsmesh.TargetScheme + target})
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		snap, err := w.Next(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return r.notVisible(inst, target, err)
			}
			return err
		}
		if serves(snap, inst.Address) {
			r.logger.Info("provider visible through istiod", "interface", inst.String(), "target", target, "address", inst.Address)
			return nil
		}
	}
}

func (r *Registry) notVisible(inst registry.Instance, target string, cause error) error {
	host, port := target, ""
	if h, p, err := net.SplitHostPort(target); err == nil {
		host, port = h, p
	}
	return fmt.Errorf("registry-istio: %s is not served at %s: istiod has no endpoint %s for host %s (%w); "+
		"apply its ServiceEntry (shoal chart, or mapping.Manifest: hosts [%s], port %s, targetPort = the provider's port, "+
		"workloadSelector matching this workload's labels)", inst.Key, target, inst.Address, host, cause, host, port)
}

// serves reports whether any cluster of the snapshot has address.
func serves(s *mesh.Snapshot, address string) bool {
	for _, svc := range s.Services() {
		for _, e := range svc.Endpoints {
			if e.Address == address {
				return true
			}
		}
		for _, sub := range svc.Subsets {
			for _, e := range sub.Endpoints {
				if e.Address == address {
					return true
				}
			}
		}
	}
	return false
}

// Deregister withdraws what Register published once the application's
// last interface leaves: this replica stops owning the ServiceEntry, and
// the last replica deletes it. The endpoint itself leaves with the workload
// (Kubernetes drops a terminating Pod from the endpoints; istiod deletes an
// auto-registered WorkloadEntry after its grace period once the stream
// closes). Without a Publisher it does nothing.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	if r.pub == nil {
		return nil
	}
	r.mu.Lock()
	delete(r.registered, inst.Key)
	last := len(r.registered) == 0
	r.mu.Unlock()
	if !last {
		return nil
	}
	app, err := r.application(inst)
	if err != nil {
		return err
	}
	return r.pub.Withdraw(ctx, app)
}

func (r *Registry) publish(ctx context.Context, inst registry.Instance) error {
	app, err := r.application(inst)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.registered[inst.Key] = true
	for k := range r.registered {
		if !slices.Contains(app.Interfaces, k) {
			app.Interfaces = append(app.Interfaces, k)
		}
	}
	r.mu.Unlock()
	return r.pub.Publish(ctx, app)
}

// application describes this provider for its ServiceEntry.
func (r *Registry) application(inst registry.Instance) (mapping.Application, error) {
	_, port, err := net.SplitHostPort(inst.Address)
	if err != nil {
		return mapping.Application{}, fmt.Errorf("registry-istio: instance address %q: %w", inst.Address, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return mapping.Application{}, fmt.Errorf("registry-istio: instance port %q: %w", port, err)
	}
	return mapping.Application{Name: r.app, Interfaces: []registry.Key{inst.Key}, TargetPort: uint32(p)}, nil
}

// Close closes the xDS stream; watchers end.
func (r *Registry) Close() error { return r.client.Close() }

// Builder returns the builder of kind "istio". The bootstrap comes from the
// environment (bootstrap.Load); Config.Address, when set, replaces istiod's
// address. Params: "domain" and "port" set the interface-to-host convention,
// "autoRegisterGroup" a WorkloadGroup for WorkloadEntry auto-registration.
func Builder() registry.Builder { return builder{} }

type builder struct{}

func (builder) Name() string { return Name }

func (builder) Build(_ context.Context, cfg registry.Config) (registry.Registry, error) {
	bc, err := bootstrap.Load()
	if err != nil {
		return nil, err
	}
	if cfg.Address != "" {
		bc.ServerURI = cfg.Address
	}
	var s mapping.Scheme
	for k, v := range cfg.Params {
		switch k {
		case "domain":
			s.Domain = v
		case "port":
			p, err := strconv.ParseUint(v, 10, 16)
			if err != nil || p == 0 {
				return nil, fmt.Errorf("registry-istio: registry %q: params.port %q is not 1-65535", cfg.Name, v)
			}
			s.Port = uint32(p)
		case "autoRegisterGroup":
			bc.Node.Metadata["AUTO_REGISTER_GROUP"] = v
		case "publish", "app":
		default:
			return nil, fmt.Errorf("registry-istio: registry %q: unknown param %q; use domain, port, autoRegisterGroup, publish or app", cfg.Name, k)
		}
	}
	opts := []Option{WithScheme(s), WithLogger(cfg.Logger)}
	switch publish := cfg.Params["publish"]; publish {
	case "", "auto", "true":
		kc, err := KubeConfig()
		if err != nil {
			return nil, err
		}
		if kc == nil {
			if publish == "true" {
				return nil, fmt.Errorf("registry-istio: registry %q: params.publish is true but there is no Kubernetes API (set KUBECONFIG or run in a Pod)", cfg.Name)
			}
			break // declared mapping only
		}
		app := cfg.Params["app"]
		if app == "" {
			if labels, ok := bc.Node.Metadata["LABELS"].(map[string]any); ok {
				app, _ = labels["app"].(string)
			}
		}
		ns, _ := bc.Node.Metadata["NAMESPACE"].(string)
		pod, _ := bc.Node.Metadata["NAME"].(string)
		pub, err := NewPublisher(kc, ns, pod, s, cfg.Logger)
		if err != nil {
			return nil, err
		}
		opts = append(opts, WithPublisher(pub, app))
	case "false":
	default:
		return nil, fmt.Errorf("registry-istio: registry %q: params.publish %q; use auto, true or false", cfg.Name, publish)
	}
	return New(bc, opts...)
}
