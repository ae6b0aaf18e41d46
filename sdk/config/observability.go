package config

import (
	"net"
	"slices"
	"strconv"
	"strings"
)

// Observability configures the observability module (package
// observabilityfx of github.com/shoalmesh/shoal/observability): an
// application without that module ignores it.
type Observability struct {
	Metrics   Metrics   `yaml:"metrics"`
	Admin     Admin     `yaml:"admin"`
	Tracing   Tracing   `yaml:"tracing"`
	AccessLog AccessLog `yaml:"accessLog"`
}

// Metrics turns Istio's request metrics and the mesh client's metrics on
// or off.
type Metrics struct {
	// Enabled records the metrics. Default: true.
	Enabled *bool `yaml:"enabled"`
}

// On reports whether metrics are on (Enabled, default true).
func (m Metrics) On() bool { return m.Enabled == nil || *m.Enabled }

// Admin configures the admin endpoint (/metrics, /healthz, /readyz,
// /debug/pprof, CSDS).
type Admin struct {
	// Address is the endpoint's host:port. Default: the module's,
	// 127.0.0.1:15000 (loopback only).
	Address string `yaml:"address"`
}

// Tracing configures OpenTelemetry tracing.
type Tracing struct {
	// Sampler turns tracing on with spans exported over OTLP (configured by
	// the OTEL_EXPORTER_OTLP_* variables) and names the sampler, as
	// OTEL_TRACES_SAMPLER does: always_on, always_off, traceidratio,
	// parentbased_always_on, parentbased_always_off or
	// parentbased_traceidratio. Default: empty, tracing only when the
	// application supplies a TracerProvider.
	Sampler string `yaml:"sampler"`
	// SamplerArg is the ratio of the traceidratio samplers, 0 to 1, as
	// OTEL_TRACES_SAMPLER_ARG. Default: 1.
	SamplerArg string `yaml:"samplerArg"`
}

// Ratio returns SamplerArg as a number (1 when empty).
func (t Tracing) Ratio() float64 {
	if strings.TrimSpace(t.SamplerArg) == "" {
		return 1
	}
	r, _ := strconv.ParseFloat(strings.TrimSpace(t.SamplerArg), 64)
	return r
}

// Samplers are the sampler names Tracing.Sampler accepts.
var Samplers = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

// AccessLog configures the sampled access log.
type AccessLog struct {
	// Every logs one successful call in Every, and every failed call.
	// Default: 0, no access log.
	Every int `yaml:"every"`
}

func (o *Observability) validate(p *problems) {
	if a := o.Admin.Address; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil {
			p.add("observability.admin.address", "%q is not host:port; write it like 127.0.0.1:15000 (0.0.0.0:15000 to listen on every interface)", a)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			p.add("observability.admin.address", "%q has no valid port; use 0 to 65535", a)
		}
	}
	if s := o.Tracing.Sampler; s != "" && !slices.Contains(Samplers, s) {
		p.add("observability.tracing.sampler", "%q is not a sampler; use one of %s", s, strings.Join(Samplers, ", "))
	}
	if a := strings.TrimSpace(o.Tracing.SamplerArg); a != "" {
		if r, err := strconv.ParseFloat(a, 64); err != nil || r < 0 || r > 1 {
			p.add("observability.tracing.samplerArg", "%q is not a ratio; use a number from 0 to 1, such as 0.01 for one trace in a hundred", a)
		}
	}
	if n := o.AccessLog.Every; n < 0 {
		p.add("observability.accessLog.every", "%d is negative; use 0 for no access log, 1 to log every call, n to log one success in n", n)
	}
}
