package registryistio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/registry-istio/inbound"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/provider"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// Where the workload identity comes from (Security.Identity, the istio
// registry's params.identity).
const (
	// IdentityOff: no workload identity; servers are not guarded and
	// ISTIO_MUTUAL clusters cannot be called. The default.
	IdentityOff = "off"
	// IdentityIstiod: certificates from istiod's CA with the projected
	// service-account token, no istio-agent (identity.New).
	IdentityIstiod = "istiod"
	// IdentityAgent: istio-agent's certificate files, named by the gRPC
	// bootstrap's "default" file_watcher (identity.FromBootstrap).
	IdentityAgent = "agent"
)

// DefaultCAAddress is istiod's TLS port, where its CA answers, in a
// Kubernetes cluster.
const DefaultCAAddress = "istiod.istio-system.svc:15012"

// DefaultIdentityTimeout bounds the first certificate request when istiod
// does not answer.
const DefaultIdentityTimeout = 30 * time.Second

// Security configures the workload identity of a Registry's process and
// so whether the registry secures the app's traffic (app.Securer).
type Security struct {
	// Identity is IdentityOff (or empty), IdentityIstiod or IdentityAgent.
	Identity string
	// CAAddress is istiod's TLS port for IdentityIstiod. Default: the xDS
	// address when the xDS stream uses TLS, else DefaultCAAddress.
	CAAddress string
	// TokenFile is the projected service-account token (audience
	// istio-ca). Default: the xDS stream's token file, else
	// identity.DefaultTokenFile.
	TokenFile string
	// RootCertFile is the mesh root. Default: the xDS stream's root file,
	// else identity.DefaultRootCertFile.
	RootCertFile string
	// CertTTL is the certificate lifetime asked of istiod (0: istiod's
	// default, 24h).
	CertTTL time.Duration
}

// Validate checks the identity mode and the TTL.
func (s Security) Validate() error {
	switch s.Identity {
	case "", IdentityOff, IdentityIstiod, IdentityAgent:
	default:
		return fmt.Errorf("registry-istio: identity %q is not %s, %s or %s", s.Identity, IdentityIstiod, IdentityAgent, IdentityOff)
	}
	if s.CertTTL < 0 {
		return fmt.Errorf("registry-istio: certTTL %v is negative; give 0 for istiod's default", s.CertTTL)
	}
	return nil
}

// NewIdentity returns the workload identity s asks for, for the process
// bc describes, or nil when s.Identity is off. With IdentityIstiod it waits
// for istiod's first certificate, within ctx and at most
// DefaultIdentityTimeout.
func NewIdentity(ctx context.Context, bc *bootstrap.Config, s Security, logger *slog.Logger) (*identity.Source, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	switch s.Identity {
	case IdentityAgent:
		return identity.FromBootstrap(bc, identity.WithLogger(logger))
	case IdentityIstiod:
	default:
		return nil, nil
	}
	addr := s.CAAddress
	opts := []identity.Option{identity.WithLogger(logger), identity.WithTTL(s.CertTTL)}
	if bc.TLS != nil {
		if addr == "" {
			addr = bc.ServerURI
		}
		if bc.TLS.ServerName != "" {
			opts = append(opts, identity.WithServerName(bc.TLS.ServerName))
		}
		if bc.TLS.TokenFile != "" {
			opts = append(opts, identity.WithTokenFile(bc.TLS.TokenFile))
		}
		if bc.TLS.RootCertFile != "" {
			opts = append(opts, identity.WithRootCertFile(bc.TLS.RootCertFile))
		}
	}
	if addr == "" {
		addr = DefaultCAAddress
	}
	if s.TokenFile != "" {
		opts = append(opts, identity.WithTokenFile(s.TokenFile))
	}
	if s.RootCertFile != "" {
		opts = append(opts, identity.WithRootCertFile(s.RootCertFile))
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultIdentityTimeout)
	defer cancel()
	return identity.New(ctx, addr, opts...)
}

var _ app.Securer = (*Registry)(nil)

// Identity returns the workload identity the registry secures traffic
// with, or nil when it has none.
func (r *Registry) Identity() *identity.Source { return r.src }

// Guard returns the inbound.Guard that secures the app's servers, or nil
// when the registry has no workload identity.
func (r *Registry) Guard() *inbound.Guard { return r.guard }

// listenerWrapper is a server whose bound listener can be wrapped
// (sdk/tri's Server).
type listenerWrapper interface {
	WrapListener(func(net.Listener) (net.Listener, error))
}

// SecureServers implements app.Securer. With a workload identity, every
// server f makes follows istiod's inbound listener for its address through
// the registry's inbound.Guard: its listener is wrapped (mutual TLS under
// PeerAuthentication STRICT, closed while istiod has no listener for it)
// and the guard's filter runs first on every call (AuthorizationPolicy).
// Servers must be sdk/tri's. Without an identity it returns f.
func (r *Registry) SecureServers(f app.ServerFactory) (app.ServerFactory, error) {
	if r.guard == nil {
		return f, nil
	}
	authz := r.guard.ServerFilter()
	return func(p config.Protocol, chain *filter.ServerChain) (provider.Server, error) {
		c, err := chain.Prepend(authz)
		if err != nil {
			return nil, fmt.Errorf("registry-istio: %w", err)
		}
		s, err := f(p, c)
		if err != nil {
			return nil, err
		}
		w, ok := s.(listenerWrapper)
		if !ok {
			return nil, fmt.Errorf("registry-istio: the server of protocol %q is a %T, whose listener cannot be guarded; serve it with sdk/tri (tri.NewServers)", p.Name, s)
		}
		w.WrapListener(r.guard.Listen)
		return s, nil
	}, nil
}

// SecureTransport implements app.Securer. With a workload identity it
// returns t dialling the clusters istiod marks ISTIO_MUTUAL over mutual
// TLS (tri.Transport.WithClusterTLS with identity.Source.ClusterTLS); t
// must be sdk/tri's Transport. Without an identity it returns t.
func (r *Registry) SecureTransport(t consumer.Transport) (consumer.Transport, error) {
	if r.src == nil {
		return t, nil
	}
	tt, ok := t.(*tri.Transport)
	if !ok {
		return nil, fmt.Errorf("registry-istio: the transport is a %T; calling ISTIO_MUTUAL clusters with the workload identity needs sdk/tri's Transport (tri.NewTransport)", t)
	}
	return tt.WithClusterTLS(r.src.ClusterTLS), nil
}

// closeSecurity stops the guard and the identity.
func (r *Registry) closeSecurity() error {
	if r.guard != nil {
		r.guard.Close()
	}
	if r.src != nil {
		return r.src.Close()
	}
	return nil
}

// closeOnError joins err with closing src, for a failed build.
func closeOnError(src *identity.Source, err error) error {
	if src != nil {
		return errors.Join(err, src.Close())
	}
	return err
}
