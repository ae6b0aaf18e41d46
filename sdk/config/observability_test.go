package config_test

import (
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/sdk/config"
)

// TestObservabilityKeys: the observability section's keys, their
// defaults, their variables and their errors.
func TestObservabilityKeys(t *testing.T) {
	c, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	o := c.Observability
	if !o.Metrics.On() || o.Admin.Address != "" || o.Tracing.Sampler != "" || o.Tracing.Ratio() != 1 || o.AccessLog.Every != 0 {
		t.Errorf("defaults: metrics %v, admin %q, sampler %q ratio %v, access log every %d", o.Metrics.On(), o.Admin.Address, o.Tracing.Sampler, o.Tracing.Ratio(), o.AccessLog.Every)
	}

	file := `
observability:
  metrics: {enabled: false}
  admin: {address: "0.0.0.0:15020"}
  tracing: {sampler: parentbased_traceidratio, samplerArg: "0.01"}
  accessLog: {every: 100}
`
	c, err = load(t, file)
	if err != nil {
		t.Fatal(err)
	}
	o = c.Observability
	if o.Metrics.On() || o.Admin.Address != "0.0.0.0:15020" || o.Tracing.Sampler != "parentbased_traceidratio" || o.Tracing.Ratio() != 0.01 || o.AccessLog.Every != 100 {
		t.Errorf("from the file: %+v", o)
	}

	c, err = load(t, file, env(map[string]string{
		"SHOAL_OBSERVABILITY_METRICS_ENABLED":     "true",
		"SHOAL_OBSERVABILITY_ADMIN_ADDRESS":       "127.0.0.1:0",
		"SHOAL_OBSERVABILITY_TRACING_SAMPLER":     "always_off",
		"SHOAL_OBSERVABILITY_TRACING_SAMPLER_ARG": "",
		"SHOAL_OBSERVABILITY_ACCESS_LOG_EVERY":    "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	o = c.Observability
	if !o.Metrics.On() || o.Admin.Address != "127.0.0.1:0" || o.Tracing.Sampler != "always_off" || o.Tracing.Ratio() != 1 || o.AccessLog.Every != 1 {
		t.Errorf("from the environment: %+v", o)
	}

	for _, tt := range []struct{ yaml, want string }{
		{"observability: {admin: {address: localhost}}", `observability.admin.address: "localhost" is not host:port`},
		{"observability: {admin: {address: ':99999'}}", `observability.admin.address: ":99999" has no valid port`},
		{"observability: {tracing: {sampler: sometimes}}", `observability.tracing.sampler: "sometimes" is not a sampler; use one of always_on`},
		{"observability: {tracing: {samplerArg: '2'}}", `observability.tracing.samplerArg: "2" is not a ratio`},
		{"observability: {accessLog: {every: -1}}", "observability.accessLog.every: -1 is negative"},
		{"observability: {metric: {}}", `unknown field "metric" in observability; check the spelling, the fields are: metrics, admin, tracing, accessLog`},
	} {
		if _, err := load(t, tt.yaml); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %s", tt.yaml, err, tt.want)
		}
	}
	if _, err := config.Load(config.WithoutFile(), env(map[string]string{"SHOAL_OBSERVABILITY_METRICS_ENABLED": "maybe"})); err == nil || !strings.Contains(err.Error(), "SHOAL_OBSERVABILITY_METRICS_ENABLED") {
		t.Errorf("bad variable: %v", err)
	}
}
