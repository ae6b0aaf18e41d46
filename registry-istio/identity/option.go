package identity

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Defaults, as a Kubernetes pod with Istio's injection has them.
const (
	// DefaultServerName is the name in istiod's serving certificate.
	DefaultServerName = "istiod.istio-system.svc"
	// DefaultTokenFile is where Istio's injection mounts the projected
	// service-account token with audience istio-ca.
	DefaultTokenFile = "/var/run/secrets/tokens/istio-token" //nolint:gosec // a path, not a credential
	// DefaultRootCertFile is where the istio-ca-root-cert ConfigMap is
	// mounted in an injected pod.
	DefaultRootCertFile = "/var/run/secrets/istio/root-cert.pem"
	// TokenAudience is the audience istiod's CA accepts.
	TokenAudience = "istio-ca"
)

// Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	serverName string
	rootFile   string
	rootPEM    []byte
	tokenFile  string
	clusterID  string
	ttl        time.Duration
	backoff    mesh.Backoff
	logger     *slog.Logger
	onUpdate   func(*tls.Certificate)
}

// WithServerName sets the name verified in istiod's certificate (default
// DefaultServerName), for dialing istiod by IP address.
func WithServerName(name string) Option { return optionFunc(func(c *config) { c.serverName = name }) }

// WithRootCertFile sets the PEM file holding the mesh's root certificate
// (default DefaultRootCertFile): it verifies istiod and every peer.
func WithRootCertFile(path string) Option { return optionFunc(func(c *config) { c.rootFile = path }) }

// WithRootPEM gives the mesh's root certificate as PEM instead of a file.
func WithRootPEM(pem []byte) Option { return optionFunc(func(c *config) { c.rootPEM = pem }) }

// WithTokenFile sets the projected service-account token file (default
// DefaultTokenFile). It is read again for every request, as the kubelet
// rotates it.
func WithTokenFile(path string) Option { return optionFunc(func(c *config) { c.tokenFile = path }) }

// WithClusterID sends the ClusterID header istiod checks (it must match
// istiod's cluster, "Kubernetes" by default); unset, no header is sent.
func WithClusterID(id string) Option { return optionFunc(func(c *config) { c.clusterID = id }) }

// WithTTL asks istiod for certificates valid for d (istiod's default, 24h,
// when 0; istiod refuses more than its maximum, 90 days by default).
func WithTTL(d time.Duration) Option { return optionFunc(func(c *config) { c.ttl = d }) }

// WithBackoff sets the waits between failed requests to istiod (default
// Base 200ms, Max 30s).
func WithBackoff(b mesh.Backoff) Option { return optionFunc(func(c *config) { c.backoff = b }) }

// WithLogger sets where renewals, failures and expiry are logged (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// WithOnUpdate calls f with each new certificate, after it is in use (from
// the renewing goroutine; f must not block long).
func WithOnUpdate(f func(*tls.Certificate)) Option {
	return optionFunc(func(c *config) { c.onUpdate = f })
}

func newConfig(opts []Option) (config, error) {
	c := config{
		serverName: DefaultServerName,
		rootFile:   DefaultRootCertFile,
		tokenFile:  DefaultTokenFile,
		backoff:    mesh.Backoff{Base: 200 * time.Millisecond, Max: 30 * time.Second},
		logger:     slog.Default(),
	}
	for _, o := range opts {
		o.apply(&c)
	}
	var errs []error
	if c.tokenFile == "" {
		errs = append(errs, errors.New("no token file; give WithTokenFile the projected service-account token (audience istio-ca)"))
	}
	if c.ttl < 0 {
		errs = append(errs, fmt.Errorf("TTL %v is negative; give 0 for istiod's default", c.ttl))
	}
	if c.serverName == "" {
		errs = append(errs, fmt.Errorf("no server name for istiod; istiod's certificate names %s", DefaultServerName))
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("identity: %w", err)
	}
	return c, nil
}
