package istiometrics

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalmesh/shoal/observability/peer"
)

// Option configures Metrics.
type Option interface{ apply(*config) }

type config struct {
	registerer  prometheus.Registerer
	self        *peer.Workload
	mtls        bool
	serviceName string
	domain      string
	// destinationHost is the service the calls of a Transport's
	// connection go to (service.go); empty elsewhere.
	destinationHost string
	// tlsState finds a served call's TLS state (tls.go).
	tlsState func(context.Context) *tls.ConnectionState
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithRegisterer sets where the metrics are registered (default: a new
// registry, returned by Metrics.Registry).
func WithRegisterer(r prometheus.Registerer) Option {
	return optionFunc(func(c *config) { c.registerer = r })
}

// WithWorkload sets this application's identity (default peer.FromEnv()).
func WithWorkload(w peer.Workload) Option {
	return optionFunc(func(c *config) { c.self = &w })
}

// WithMutualTLS says the application's calls run over Istio mutual TLS:
// principals are reported and connection_security_policy is "mutual_tls"
// on the destination side (default: "unknown" principals and "none").
func WithMutualTLS(on bool) Option { return optionFunc(func(c *config) { c.mtls = on }) }

// WithServiceName sets destination_service_name for calls this
// application serves (default: its canonical service), for a Kubernetes
// Service named differently from the app label.
func WithServiceName(name string) Option {
	return optionFunc(func(c *config) { c.serviceName = strings.TrimSpace(name) })
}

// WithDomain sets the cluster DNS domain of destination_service (default
// "cluster.local").
func WithDomain(d string) Option {
	return optionFunc(func(c *config) { c.domain = strings.TrimSpace(d) })
}

func newConfig(opts []Option) (config, error) {
	c := config{domain: "cluster.local"}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.domain == "" {
		return c, errors.New("istiometrics: empty domain; leave WithDomain out for cluster.local")
	}
	if c.self == nil {
		w, err := peer.FromEnv()
		if err != nil {
			return c, err
		}
		c.self = &w
	}
	return c, nil
}
