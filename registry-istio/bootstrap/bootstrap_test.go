package bootstrap_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromEnv(t *testing.T) {
	rootCert := writeFile(t, "root-cert.pem", "not checked here")
	token := writeFile(t, "token", "jwt")
	base := []string{"POD_NAME=greeter-7d9", "POD_NAMESPACE=shop", "INSTANCE_IP=10.1.2.3"}
	tests := []struct {
		name    string
		env     []string
		check   func(t *testing.T, c *bootstrap.Config)
		wantErr string
	}{
		{
			name: "pod identity and plaintext address",
			env:  append(base, "SHOAL_XDS_ADDRESS=127.0.0.1:15010"),
			check: func(t *testing.T, c *bootstrap.Config) {
				if c.Node.ID != "sidecar~10.1.2.3~greeter-7d9.shop~shop.svc.cluster.local" {
					t.Errorf("node id %q", c.Node.ID)
				}
				if c.ServerURI != "127.0.0.1:15010" || c.TLS != nil {
					t.Errorf("server %q tls %+v, want plaintext 127.0.0.1:15010", c.ServerURI, c.TLS)
				}
				want := map[string]any{
					"GENERATOR": "grpc", "NAMESPACE": "shop", "NAME": "greeter-7d9",
					"INSTANCE_IPS": "10.1.2.3", "CLUSTER_ID": "Kubernetes",
				}
				for k, v := range want {
					if c.Node.Metadata[k] != v {
						t.Errorf("metadata %s = %v, want %v", k, c.Node.Metadata[k], v)
					}
				}
			},
		},
		{
			name: "ISTIO_META and ISTIO_METAJSON",
			env: append(base, "SHOAL_XDS_ADDRESS=istiod:15010", "ISTIO_META_CLUSTER_ID=east",
				"ISTIO_META_MESH_ID=mesh1", `ISTIO_METAJSON_LABELS={"app":"greeter","version":"v2"}`,
				`ISTIO_METAJSON_PLATFORM_METADATA={"zone":"a"}`, "SHOAL_CLUSTER_DOMAIN=corp.local",
				"INSTANCE_IP=10.1.2.3,fd00::3"),
			check: func(t *testing.T, c *bootstrap.Config) {
				md := c.Node.Metadata
				if md["CLUSTER_ID"] != "east" || md["MESH_ID"] != "mesh1" || md["INSTANCE_IPS"] != "10.1.2.3,fd00::3" {
					t.Errorf("metadata %v", md)
				}
				labels, _ := md["LABELS"].(map[string]any)
				if labels["app"] != "greeter" || labels["version"] != "v2" {
					t.Errorf("labels %v", md["LABELS"])
				}
				if pm, _ := md["PLATFORM_METADATA"].(map[string]any); pm["zone"] != "a" {
					t.Errorf("platform metadata %v", md["PLATFORM_METADATA"])
				}
				if !strings.HasSuffix(c.Node.ID, "~shop.svc.corp.local") {
					t.Errorf("node id %q", c.Node.ID)
				}
			},
		},
		{
			name: "port 15012 means TLS with root cert and token",
			env:  append(base, "SHOAL_XDS_ADDRESS=istiod.istio-system.svc:15012", "SHOAL_XDS_ROOT_CERT="+rootCert, "SHOAL_XDS_TOKEN="+token),
			check: func(t *testing.T, c *bootstrap.Config) {
				if c.TLS == nil || c.TLS.RootCertFile != rootCert || c.TLS.TokenFile != token || c.TLS.ServerName != "istiod.istio-system.svc" {
					t.Errorf("tls %+v", c.TLS)
				}
			},
		},
		{
			name: "SHOAL_XDS_TLS=false overrides the port",
			env:  append(base, "SHOAL_XDS_ADDRESS=istiod:15012", "SHOAL_XDS_TLS=false"),
			check: func(t *testing.T, c *bootstrap.Config) {
				if c.TLS != nil {
					t.Errorf("tls %+v, want none", c.TLS)
				}
			},
		},
		{
			name: "defaults without an address: namespace and port 15010",
			env:  []string{"POD_NAME=p", "INSTANCE_IP=10.0.0.1"},
			check: func(t *testing.T, c *bootstrap.Config) {
				if c.Node.Metadata["NAMESPACE"] != "default" {
					t.Errorf("namespace %v", c.Node.Metadata["NAMESPACE"])
				}
				// The default root cert path does not exist on the test machine.
				if c.ServerURI != "istiod.istio-system.svc:15010" {
					t.Errorf("server %q", c.ServerURI)
				}
			},
		},
		{name: "bad address", env: append(base, "SHOAL_XDS_ADDRESS=istiod"), wantErr: "SHOAL_XDS_ADDRESS=\"istiod\" is not host:port"},
		{name: "bad IP", env: []string{"INSTANCE_IP=pod-ip"}, wantErr: "INSTANCE_IP \"pod-ip\" is not an IP address"},
		{name: "bad JSON metadata", env: append(base, "ISTIO_METAJSON_LABELS={"), wantErr: "ISTIO_METAJSON_LABELS is not valid JSON"},
		{name: "labels not strings", env: append(base, `ISTIO_METAJSON_LABELS={"a":1}`), wantErr: `label "a" is not a string`},
		{name: "bad TLS flag", env: append(base, "SHOAL_XDS_TLS=maybe"), wantErr: "SHOAL_XDS_TLS=\"maybe\"; use true or false"},
		{name: "missing root cert", env: append(base, "SHOAL_XDS_ADDRESS=i:15012", "SHOAL_XDS_ROOT_CERT=/nonexistent/root.pem"), wantErr: "/nonexistent/root.pem does not exist; set SHOAL_XDS_ROOT_CERT"},
		{name: "missing token", env: append(base, "SHOAL_XDS_ADDRESS=i:15012", "SHOAL_XDS_ROOT_CERT="+rootCert, "SHOAL_XDS_TOKEN=/nonexistent/t"), wantErr: "token file /nonexistent/t does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := bootstrap.FromEnv(tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// istio-agent's proxyless bootstrap, as pkg/istio-agent/grpcxds writes it
// (trimmed), plus variants.
const agentBootstrap = `{
  "xds_servers": [{"server_uri": "unix:///etc/istio/proxy/XDS", "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {
    "id": "sidecar~10.244.0.12~echo-v1-6b4d.echo~echo.svc.cluster.local",
    "metadata": {"GENERATOR": "grpc", "NAMESPACE": "echo", "INSTANCE_IPS": "10.244.0.12", "LABELS": {"app": "echo"}},
    "locality": {"region": "eu", "zone": "eu-1", "sub_zone": "a"}
  },
  "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s"
}`

func TestFromJSON(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		check   func(t *testing.T, c *bootstrap.Config)
		wantErr string
	}{
		{
			name: "istio-agent bootstrap",
			json: agentBootstrap,
			check: func(t *testing.T, c *bootstrap.Config) {
				if c.ServerURI != "unix:///etc/istio/proxy/XDS" || c.TLS != nil {
					t.Errorf("server %q tls %+v", c.ServerURI, c.TLS)
				}
				if c.Node.Locality != (bootstrap.Locality{Region: "eu", Zone: "eu-1", SubZone: "a"}) {
					t.Errorf("locality %+v", c.Node.Locality)
				}
				if c.Node.Metadata["NAMESPACE"] != "echo" || len(c.ServerFeatures) != 1 {
					t.Errorf("node %+v features %v", c.Node, c.ServerFeatures)
				}
			},
		},
		{
			name: "tls creds and a missing GENERATOR is added",
			json: `{"xds_servers":[{"server_uri":"istiod:15012","channel_creds":[{"type":"google_default"},{"type":"tls","config":{"ca_certificate_file":"/ca.pem"}}]}],
			        "node":{"id":"sidecar~1.2.3.4~a.b~b.svc.cluster.local"}}`,
			check: func(t *testing.T, c *bootstrap.Config) {
				if c.TLS == nil || c.TLS.RootCertFile != "/ca.pem" {
					t.Errorf("tls %+v", c.TLS)
				}
				if c.Node.Metadata["GENERATOR"] != "grpc" {
					t.Errorf("metadata %v", c.Node.Metadata)
				}
			},
		},
		{name: "not JSON", json: `{`, wantErr: "is not valid JSON"},
		{name: "no servers", json: `{"node":{"id":"x"}}`, wantErr: "has no xds_servers"},
		{name: "unsupported creds", json: `{"xds_servers":[{"server_uri":"a:1","channel_creds":[{"type":"google_default"}]}],"node":{"id":"sidecar~1~a.b~b.svc"}}`, wantErr: `channel_creds ["google_default"] has no supported type`},
		{name: "no node", json: `{"xds_servers":[{"server_uri":"a:1","channel_creds":[{"type":"insecure"}]}]}`, wantErr: "has no node"},
		{name: "bad node id", json: `{"xds_servers":[{"server_uri":"a:1","channel_creds":[{"type":"insecure"}]}],"node":{"id":"consumer"}}`, wantErr: `node id "consumer" does not have istiod's 4 parts`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := bootstrap.FromJSON([]byte(tt.json), "test.json")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestFromFileAndLoad(t *testing.T) {
	path := writeFile(t, "bootstrap.json", agentBootstrap)
	t.Setenv("SHOAL_XDS_ADDRESS", "")
	t.Setenv("GRPC_XDS_BOOTSTRAP", path)
	c, err := bootstrap.Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.ID != "sidecar~10.244.0.12~echo-v1-6b4d.echo~echo.svc.cluster.local" {
		t.Fatalf("node id %q", c.Node.ID)
	}
	// SHOAL_XDS_ADDRESS wins over the gRPC bootstrap.
	t.Setenv("SHOAL_XDS_ADDRESS", "127.0.0.1:15010")
	t.Setenv("INSTANCE_IP", "10.9.9.9")
	if c, err = bootstrap.Load(); err != nil || c.ServerURI != "127.0.0.1:15010" {
		t.Fatalf("Load with SHOAL_XDS_ADDRESS = %+v, %v", c, err)
	}
	if _, err := bootstrap.FromFile(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "GRPC_XDS_BOOTSTRAP") {
		t.Fatalf("missing file error = %v, want it to name GRPC_XDS_BOOTSTRAP", err)
	}
}

func TestNodeProto(t *testing.T) {
	c := &bootstrap.Config{ServerURI: "127.0.0.1:15010", Node: bootstrap.Identity{
		PodName: "p", Namespace: "n", IPs: []string{"10.0.0.1"}, Locality: bootstrap.Locality{Region: "r"},
	}.Node()}
	n, err := c.NodeProto()
	if err != nil {
		t.Fatal(err)
	}
	if n.GetId() != "sidecar~10.0.0.1~p.n~n.svc.cluster.local" || n.GetLocality().GetRegion() != "r" ||
		n.GetMetadata().GetFields()["GENERATOR"].GetStringValue() != "grpc" {
		t.Fatalf("node proto %v", n)
	}
	bad := &bootstrap.Config{ServerURI: "a:1", Node: bootstrap.Node{ID: "sidecar~1~a.b~c", Metadata: map[string]any{"x": make(chan int)}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "not JSON-compatible") {
		t.Fatalf("validate = %v", err)
	}
}

// The consumer's namespace and cluster domain, which app-level references
// resolve in, come from the node.
func TestNodeNamespaceAndClusterDomain(t *testing.T) {
	tests := []struct {
		name       string
		node       bootstrap.Node
		ns, domain string
	}{
		{"identity", bootstrap.Identity{PodName: "p", Namespace: "shop", Domain: "corp.local"}.Node(), "shop", "corp.local"},
		{"default domain", bootstrap.Identity{PodName: "p", Namespace: "shop"}.Node(), "shop", "cluster.local"},
		// A gRPC bootstrap file may carry only the ID.
		{"ID only", bootstrap.Node{ID: "sidecar~10.0.0.1~p.billing~billing.svc.example.org"}, "billing", "example.org"},
		{"nothing", bootstrap.Node{ID: "client-1"}, "", "cluster.local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ns, domain := tt.node.Namespace(), tt.node.ClusterDomain(); ns != tt.ns || domain != tt.domain {
				t.Fatalf("Namespace, ClusterDomain = %q, %q; want %q, %q", ns, domain, tt.ns, tt.domain)
			}
		})
	}
}

// PROXY_CONFIG is what istiod's syncz needs to list a node: the identity
// adds an empty one and keeps one the operator gave.
func TestNodeProxyConfig(t *testing.T) {
	n := bootstrap.Identity{PodName: "p", Namespace: "n"}.Node()
	pc, ok := n.Metadata["PROXY_CONFIG"].(map[string]any)
	if !ok || len(pc) != 0 {
		t.Fatalf("PROXY_CONFIG = %#v, want an empty object", n.Metadata["PROXY_CONFIG"])
	}
	given := map[string]any{"discoveryAddress": "istiod:15012"}
	n = bootstrap.Identity{PodName: "p", Namespace: "n", Metadata: map[string]any{"PROXY_CONFIG": given}}.Node()
	if got, _ := n.Metadata["PROXY_CONFIG"].(map[string]any); got["discoveryAddress"] != "istiod:15012" {
		t.Fatalf("PROXY_CONFIG = %#v, want the operator's", n.Metadata["PROXY_CONFIG"])
	}
}
