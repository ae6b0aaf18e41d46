package bootstrap_test

import (
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
)

// withProviders is a minimal bootstrap with the given certificate_providers
// JSON object.
func withProviders(providers string) string {
	return `{"xds_servers":[{"server_uri":"unix:///etc/istio/proxy/XDS","channel_creds":[{"type":"insecure"}]}],
	  "node":{"id":"sidecar~10.0.0.1~a.b~b.svc.cluster.local"},
	  "certificate_providers":` + providers + `}`
}

func TestCertificateProviders(t *testing.T) {
	// As istio-agent's grpcxds writes it for inject.istio.io/templates: grpc-agent.
	agent := withProviders(`{"default":{"plugin_name":"file_watcher","config":{
	  "certificate_file":"/var/lib/istio/data/cert-chain.pem","private_key_file":"/var/lib/istio/data/key.pem",
	  "ca_certificate_file":"/var/lib/istio/data/root-cert.pem","refresh_interval":"900s"}},
	  "other":{"plugin_name":"meshca"}}`)
	c, err := bootstrap.FromJSON([]byte(agent), "agent.json")
	if err != nil {
		t.Fatal(err)
	}
	d := c.CertificateProviders[bootstrap.DefaultCertificateProvider]
	want := bootstrap.FileWatcher{
		CertificateFile: "/var/lib/istio/data/cert-chain.pem", PrivateKeyFile: "/var/lib/istio/data/key.pem",
		CACertificateFile: "/var/lib/istio/data/root-cert.pem", RefreshInterval: 900 * time.Second,
	}
	if d.Plugin != bootstrap.FileWatcherPlugin || d.FileWatcher == nil || *d.FileWatcher != want {
		t.Fatalf("default provider %+v (%+v), want file_watcher %+v", d, d.FileWatcher, want)
	}
	if o := c.CertificateProviders["other"]; o.Plugin != "meshca" || o.FileWatcher != nil {
		t.Fatalf("other provider %+v, want meshca kept by name", o)
	}

	none, err := bootstrap.FromJSON([]byte(agentBootstrap), "agent.json")
	if err != nil || none.CertificateProviders != nil {
		t.Fatalf("no certificate_providers: %+v, %v", none.CertificateProviders, err)
	}

	for _, tc := range []struct{ name, providers, wantErr string }{
		{"missing files", `{"default":{"plugin_name":"file_watcher","config":{"certificate_file":"/c.pem"}}}`, `certificate_providers["default"]: file_watcher config lacks private_key_file, ca_certificate_file`},
		{"bad interval", `{"default":{"plugin_name":"file_watcher","config":{"certificate_file":"c","private_key_file":"k","ca_certificate_file":"r","refresh_interval":"soon"}}}`, `refresh_interval "soon" is not a positive duration`},
		{"config not an object", `{"default":{"plugin_name":"file_watcher","config":[1]}}`, "file_watcher config: json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bootstrap.FromJSON([]byte(withProviders(tc.providers)), "agent.json")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
