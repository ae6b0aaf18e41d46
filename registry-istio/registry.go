package registryistio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/registry-istio/inbound"
	"github.com/shoalmesh/shoal/registry-istio/kubestate"
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
	kube   *kubestate.Writer
	src    *identity.Source // nil: no workload identity
	guard  *inbound.Guard   // set with src
}

var _ registry.Registry = (*Registry)(nil)

// Option configures a Registry.
type Option func(*options)

type options struct {
	scheme     mapping.Scheme
	logger     *slog.Logger
	clientOpts []xdsclient.Option
	kube       *kubestate.Writer
	src        *identity.Source
}

// WithScheme sets the interface-to-host convention (default mapping.Scheme{}).
func WithScheme(s mapping.Scheme) Option { return func(o *options) { o.scheme = s } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithKubernetes turns dynamic registration on: Register writes the
// provider's ServiceEntry share (and WorkloadEntry) through w before it
// waits for istiod to serve it, and Deregister removes them. Without it the
// state must be pre-declared (GitOps).
func WithKubernetes(w *kubestate.Writer) Option { return func(o *options) { o.kube = w } }

// WithIdentity gives the registry the process's workload identity: it then
// secures the app's traffic (SecureServers, SecureTransport) and closes src
// on Close. See NewIdentity.
func WithIdentity(src *identity.Source) Option { return func(o *options) { o.src = src } }

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
	r := &Registry{
		client: c,
		disc:   xdsmesh.NewDiscovery(c, xdsmesh.WithLogger(o.logger), xdsmesh.WithScheme(o.scheme)),
		scheme: o.scheme,
		logger: o.logger.With("component", "registry-istio"),
		kube:   o.kube,
		src:    o.src,
	}
	if o.src != nil {
		r.guard = inbound.New(c, o.src, inbound.WithLogger(o.logger))
	}
	return r, nil
}

// Client returns the xDS client, for its Status.
func (r *Registry) Client() *xdsclient.Client { return r.client }

// Watch implements registry.Discovery: by interface name (and group), by
// an xds:///host:port target, or by the providing application (an
// app-level reference, key.ProvidedBy: its Kubernetes Service host, see
// xdsmesh.Discovery.Target).
func (r *Registry) Watch(ctx context.Context, key registry.Key) (registry.Watcher, error) {
	return r.disc.Watch(ctx, key)
}

// Target returns the host:port istiod is asked about for key: the
// interface's ServiceEntry host, the host of an xds:/// target, or the
// providing application's Service host (see xdsmesh.Discovery.Target).
func (r *Registry) Target(key registry.Key) (string, error) { return r.disc.Target(key) }

// Register writes the provider's registration through the Kubernetes API
// when dynamic registration is on (WithKubernetes), announces this process
// to istiod (Client.Connect, which also runs WorkloadEntry
// auto-registration when the node names a WorkloadGroup) and then waits until istiod serves inst.Address under the host of inst's
// interface and group: that proves a ServiceEntry carries the interface and
// selects this workload. It fails, saying what to apply, if that does not
// happen before ctx ends (or DefaultRegisterTimeout without a deadline).
//
// Registration in Istio is state in the Kubernetes API server: the
// ServiceEntry (see mapping.Manifest) and the pod or WorkloadEntry. With
// dynamic registration Register writes that state (package kubestate) and
// undoes its write if istiod does not serve it in time; without, it checks
// that pre-declared state is in effect.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) (err error) {
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
	if r.kube != nil {
		if err := r.kube.Register(ctx, inst); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				err = errors.Join(err, r.kube.Deregister(uctx, inst))
			}
		}()
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

// Deregister removes what Register wrote when dynamic registration is on:
// the instance's host from this workload's share of the ServiceEntry, the
// WorkloadEntry when nothing else is served from its address, and the
// ServiceEntry when no replica is left. It is idempotent. Without dynamic
// registration it does nothing: the provider then leaves with its workload
// (Kubernetes removes a terminating pod from the endpoints; istiod deletes
// an auto-registered WorkloadEntry after its grace period once the stream
// closes).
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	if r.kube == nil {
		return nil
	}
	return r.kube.Deregister(ctx, inst)
}

// Close closes the xDS stream (watchers end), the guard and the workload
// identity. Stop the servers first.
func (r *Registry) Close() error { return errors.Join(r.closeSecurity(), r.client.Close()) }

// Builder returns the builder of kind "istio". The bootstrap comes from the
// environment (bootstrap.Load); Config.Address, when set, replaces istiod's
// address. Params:
//   - "domain" and "port" set the interface-to-host convention;
//   - "appPort" is the Service port of app-level references (providedBy)
//     that name none (default: port, else 50051);
//   - "autoRegisterGroup" names a WorkloadGroup for WorkloadEntry
//     auto-registration;
//   - "publish" turns dynamic registration through the Kubernetes API on
//     ("true"), off ("false": GitOps only, the ServiceEntry is pre-declared)
//     or "auto" (the default: on when the process runs in a cluster or
//     KUBECONFIG is set);
//   - "kubeconfig" is a kubeconfig file to use instead;
//   - "app" names the application whose ServiceEntry the replicas share
//     (default: the node's app label, else the executable's name);
//   - "identity" is the workload identity: "off" (the default), "istiod"
//     (certificates from istiod's CA, no istio-agent) or "agent"
//     (istio-agent's files from the gRPC bootstrap); with one, the app's
//     servers follow istiod's inbound listener and its references call
//     ISTIO_MUTUAL clusters over mutual TLS (see SecureServers,
//     SecureTransport, Security);
//   - "caAddress", "tokenFile", "rootCertFile" and "certTTL" set
//     Security's fields of the same names for "istiod".
func Builder() registry.Builder { return builder{} }

type builder struct{}

func (builder) Name() string { return Name }

func (builder) Build(ctx context.Context, cfg registry.Config) (registry.Registry, error) {
	bc, err := bootstrap.Load()
	if err != nil {
		return nil, err
	}
	if cfg.Address != "" {
		bc.ServerURI = cfg.Address
	}
	var s mapping.Scheme
	var sec Security
	publish, kubeconfig, app := "auto", "", ""
	for k, v := range cfg.Params {
		switch k {
		case "domain":
			s.Domain = v
		case "port", "appPort":
			p, err := strconv.ParseUint(v, 10, 16)
			if err != nil || p == 0 {
				return nil, fmt.Errorf("registry-istio: registry %q: params.%s %q is not 1-65535", cfg.Name, k, v)
			}
			if k == "port" {
				s.Port = uint32(p)
			} else {
				s.AppPort = uint32(p)
			}
		case "autoRegisterGroup":
			bc.Node.Metadata["AUTO_REGISTER_GROUP"] = v
		case "publish":
			if v != "auto" && v != "true" && v != "false" {
				return nil, fmt.Errorf("registry-istio: registry %q: params.publish %q is not auto, true or false", cfg.Name, v)
			}
			publish = v
		case "kubeconfig":
			kubeconfig = v
		case "app":
			app = v
		case "identity":
			sec.Identity = v
		case "caAddress":
			sec.CAAddress = v
		case "tokenFile":
			sec.TokenFile = v
		case "rootCertFile":
			sec.RootCertFile = v
		case "certTTL":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("registry-istio: registry %q: params.certTTL %q is not a duration such as 24h", cfg.Name, v)
			}
			sec.CertTTL = d
		default:
			return nil, fmt.Errorf("registry-istio: registry %q: unknown param %q; use domain, port, appPort, autoRegisterGroup, publish, kubeconfig, app, identity, caAddress, tokenFile, rootCertFile or certTTL", cfg.Name, k)
		}
	}
	if err := sec.Validate(); err != nil {
		return nil, fmt.Errorf("registry-istio: registry %q: params: %w", cfg.Name, err)
	}
	opts := []Option{WithScheme(s), WithLogger(cfg.Logger)}
	if publish != "false" {
		w, err := kubeWriter(bc, s, kubeconfig, app, cfg.Logger)
		switch {
		case errors.Is(err, kubestate.ErrNoKubernetes) && publish == "auto" && kubeconfig == "":
			// GitOps: the ServiceEntry is pre-declared.
		case err != nil:
			return nil, fmt.Errorf("registry-istio: registry %q: dynamic registration: %w", cfg.Name, err)
		default:
			opts = append(opts, WithKubernetes(w))
		}
	}
	src, err := NewIdentity(ctx, bc, sec, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("registry-istio: registry %q: params.identity %s: %w", cfg.Name, sec.Identity, err)
	}
	r, err := New(bc, append(opts, WithIdentity(src))...)
	if err != nil {
		return nil, closeOnError(src, err)
	}
	return r, nil
}

// kubeWriter builds the Kubernetes writer for the workload the bootstrap
// node describes.
func kubeWriter(bc *bootstrap.Config, s mapping.Scheme, kubeconfig, app string, logger *slog.Logger) (*kubestate.Writer, error) {
	rc, err := kubestate.LoadConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	md := bc.Node.Metadata
	wl := kubestate.Workload{App: app, Labels: map[string]string{}}
	wl.Namespace, _ = md["NAMESPACE"].(string)
	if os.Getenv("POD_NAME") != "" || os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		wl.PodName, _ = md["NAME"].(string)
	}
	if labels, ok := md["LABELS"].(map[string]any); ok {
		for k, v := range labels {
			if sv, ok := v.(string); ok {
				wl.Labels[k] = sv
			}
		}
	}
	if wl.App == "" {
		wl.App = wl.Labels["app"]
	}
	if wl.App == "" {
		if exe, err := os.Executable(); err == nil {
			wl.App = strings.ToLower(strings.TrimSuffix(filepath.Base(exe), ".test"))
		}
	}
	return kubestate.NewForConfig(rc, wl, kubestate.WithScheme(s), kubestate.WithLogger(logger))
}
