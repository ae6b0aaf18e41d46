package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/config"
)

func noEnv(string) (string, bool) { return "", false }

func env(vars map[string]string) config.Option {
	return config.WithEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
}

func load(t *testing.T, yaml string, opts ...config.Option) (*config.Config, error) {
	t.Helper()
	return config.Load(append([]config.Option{config.WithYAML("shoal.yaml", []byte(yaml)), config.WithEnv(noEnv)}, opts...)...)
}

func TestDefaultsMakeTheFileOptional(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // no shoal.yaml here
	c, err := config.Load(config.WithEnv(noEnv), config.WithReference(config.Reference{Interface: "greet.GreetService"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Application.Name == "" || c.Logging.Level != "info" || c.Logging.Format != "text" ||
		time.Duration(*c.Application.DrainDelay) != time.Second || time.Duration(c.Application.ShutdownTimeout) != 30*time.Second {
		t.Errorf("application/logging defaults: %+v %+v", c.Application, c.Logging)
	}
	if len(c.Registries) != 1 || c.Registries[0].Name != "default" || c.Registries[0].Kind != "file" || c.Registries[0].Address != "" {
		t.Errorf("registries = %+v, want the embedded file registry", c.Registries)
	}
	if len(c.Protocols) != 1 || c.Protocols[0].Name != "tri" || c.Protocols[0].Port != 50051 {
		t.Errorf("protocols = %+v", c.Protocols)
	}
	r, ok := c.Reference("greet.GreetService")
	if !ok || r.Registry != "default" || r.Balancer != "round_robin" || r.Cluster != "failover" || r.Router != "service" ||
		*r.Retries != 2 || time.Duration(r.Timeout) != 3*time.Second {
		t.Errorf("reference defaults = %+v", r)
	}
}

const full = `
application:
  name: greeter
  labels: {app: greeter}
  drainDelay: 0s
logging: {level: debug, format: json}
registries:
  - {name: local, kind: file, address: /tmp/x.yaml}
  - {name: fixed, kind: direct, address: "tri://127.0.0.1:1"}
protocols:
  - {name: tri, port: 20000, host: 127.0.0.1}
services:
  - {interface: greet.GreetService, version: 1.0.0, registries: [local], protocols: [tri]}
references:
  - {name: a, interface: greet.GreetService, version: 1.0.0, registry: fixed, timeout: 500ms, retries: 0, cluster: failfast}
  - {interface: other.Service, url: "tri://127.0.0.1:2,tri://127.0.0.1:3", balancer: ring_hash, hashKey: x-user}
  - {name: byApp, interface: greet.GreetService, providedBy: greeter.shop}
filters:
  client: [auth, metrics]
  server: [metrics]
`

func TestFullFile(t *testing.T) {
	c, err := load(t, full)
	if err != nil {
		t.Fatal(err)
	}
	if *c.Application.DrainDelay != 0 {
		t.Errorf("drainDelay 0s from the file became %s", c.Application.DrainDelay)
	}
	a, _ := c.Reference("a")
	if a.Registry != "fixed" || *a.Retries != 0 || time.Duration(a.Timeout) != 500*time.Millisecond || a.Cluster != "failfast" {
		t.Errorf("reference a = %+v", a)
	}
	o, ok := c.Reference("other.Service")
	if !ok || o.Registry != "" || o.HashKey != "x-user" {
		t.Errorf("reference other = %+v", o)
	}
	if b, ok := c.Reference("byApp"); !ok || b.ProvidedBy != "greeter.shop" || b.Registry != "local" {
		t.Errorf("reference byApp = %+v", b)
	}
	if strings.Join(c.Filters.Client, ",") != "auth,metrics" || c.Services[0].Weight != 1 {
		t.Errorf("filters/services = %+v %+v", c.Filters, c.Services)
	}
	if reg, ok := c.RegistryByName("local"); !ok || reg.Address != "/tmp/x.yaml" {
		t.Errorf("registry local = %+v", reg)
	}
	if c.Logger() == nil {
		t.Error("no logger")
	}
}

func TestLayersFileThenCodeThenEnv(t *testing.T) {
	c, err := load(t, full,
		config.WithApplicationName("from-code"),
		config.Modify(func(c *config.Config) { c.Protocols[0].Port = 30000 }),
		env(map[string]string{
			"SHOAL_PROTOCOLS_0_PORT":           "40000",
			"SHOAL_REFERENCES_0_TIMEOUT":       "2s",
			"SHOAL_REFERENCES_1_RETRIES":       "5",
			"SHOAL_FILTERS_CLIENT":             "metrics, tracing",
			"SHOAL_LOGGING_LEVEL":              "warn",
			"SHOAL_PROTOCOLS_0_ADVERTISE_HOST": "10.0.0.9",
			"SHOAL_REFERENCES_7_TIMEOUT":       "9s", // no such element: ignored
		}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Application.Name != "from-code" || c.Protocols[0].Port != 40000 || c.Protocols[0].AdvertiseHost != "10.0.0.9" || c.Logging.Level != "warn" {
		t.Errorf("layers: app %q port %d advertise %q level %q", c.Application.Name, c.Protocols[0].Port, c.Protocols[0].AdvertiseHost, c.Logging.Level)
	}
	if time.Duration(c.References[0].Timeout) != 2*time.Second || *c.References[1].Retries != 5 {
		t.Errorf("references = %+v", c.References)
	}
	if strings.Join(c.Filters.Client, ",") != "metrics,tracing" {
		t.Errorf("filters.client = %v", c.Filters.Client)
	}
	// The environment also wins over the name from code.
	c, err = load(t, full, config.WithApplicationName("from-code"), env(map[string]string{"SHOAL_APPLICATION_NAME": "from-env"}))
	if err != nil || c.Application.Name != "from-env" {
		t.Errorf("application name = %v, %v", c.Application.Name, err)
	}
}

func TestEnvChangesTheDefaultLists(t *testing.T) {
	c, err := config.Load(config.WithoutFile(), env(map[string]string{"SHOAL_PROTOCOLS_0_PORT": "0", "SHOAL_REGISTRIES_0_ADDRESS": "/tmp/r.yaml"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Protocols[0].Port != 0 || c.Protocols[0].Name != "tri" || c.Registries[0].Address != "/tmp/r.yaml" || c.Registries[0].Kind != "file" {
		t.Errorf("protocols %+v, registries %+v", c.Protocols, c.Registries)
	}
}

func TestEnvNames(t *testing.T) {
	for path, want := range map[string]string{
		"application.name":          "SHOAL_APPLICATION_NAME",
		"references.0.hashKey":      "SHOAL_REFERENCES_0_HASH_KEY",
		"protocols.1.advertiseHost": "SHOAL_PROTOCOLS_1_ADVERTISE_HOST",
	} {
		if got := config.EnvName(strings.Split(path, ".")...); got != want {
			t.Errorf("EnvName(%s) = %s, want %s", path, got, want)
		}
	}
}

func TestBadEnv(t *testing.T) {
	_, err := load(t, full, env(map[string]string{"SHOAL_PROTOCOLS_0_PORT": "http", "SHOAL_REFERENCES_0_TIMEOUT": "5"}))
	for _, want := range []string{
		`shoal.yaml: SHOAL_PROTOCOLS_0_PORT="http" (protocols[0].port): not a whole number`,
		`SHOAL_REFERENCES_0_TIMEOUT="5" (references[0].timeout): "5" is not a duration; write it with a unit, like 3s or 500ms`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v\nwant %s", err, want)
		}
	}
}

func TestBadFiles(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{
			"empty reference interface",
			"references:\n  - interface: greet.GreetService\n  - name: b\n",
			"shoal.yaml: references[1].interface: empty; set it to the service's interface name such as greet.GreetService",
		},
		{"unknown field", "application:\n  nickname: x\n", `shoal.yaml: line 2: unknown field "nickname" in application; check the spelling, the fields are: name, labels`},
		{"not yaml", "references: [", "shoal.yaml: not valid YAML"},
		{"wrong type", "protocols:\n  - port: high\n", "shoal.yaml: not valid YAML"},
		{"bad duration", "references:\n  - {interface: a, timeout: soon}\n", `"soon" is not a duration`},
		{"level", "logging: {level: loud}\n", `shoal.yaml: logging.level: "loud" is not a level; use debug, info, warn or error`},
		{"format", "logging: {format: xml}\n", `logging.format: "xml" is not a format`},
		{"registry without kind", "registries:\n  - name: r\n", "shoal.yaml: registries[0].kind: empty; set it to file, direct"},
		{"registry without name", "registries:\n  - {kind: file}\n  - {name: b, kind: file}\n", "registries[0].name: empty"},
		{"duplicate registry", "registries:\n  - {name: r, kind: file}\n  - {name: r, kind: file}\n", `registries[1].name: "r" is used twice`},
		{"direct without address", "registries:\n  - {name: r, kind: direct}\n", "registries[0].address: empty; a direct registry needs provider URLs"},
		{"protocol", "protocols:\n  - {name: dubbo}\n", `protocols[0].name: "dubbo" is not supported; use tri`},
		{"port", "protocols:\n  - {port: 70000}\n", "protocols[0].port: 70000 is out of range"},
		{"host", "protocols:\n  - {host: my-host}\n", `protocols[0].host: "my-host" is not an IP address`},
		{"service interface", "services:\n  - {version: 1.0.0}\n", "services[0].interface: empty; set it to the interface name"},
		{"service wildcard", "services:\n  - {interface: a, version: '*'}\n", `services[0]: group and version of a provided service cannot be "*"`},
		{"service twice", "services:\n  - {interface: a}\n  - {interface: a}\n", "services[1]: a (group \"\", version \"\") is provided twice"},
		{"service registry", "services:\n  - {interface: a, registries: [nacos]}\n", `services[0].registries[0]: "nacos" is not a registry; use one of the names under registries: default`},
		{"service protocol", "services:\n  - {interface: a, protocols: [grpc]}\n", `services[0].protocols[0]: "grpc" is not a protocol`},
		{"reference registry", "references:\n  - {interface: a, registry: zk}\n", `references[0].registry: "zk" is not a registry`},
		{"reference url", "references:\n  - {interface: a, url: 'http://h:1'}\n", `references[0].url: "http://h:1" is not a provider URL; write tri://host:port`},
		{"reference url port", "references:\n  - {interface: a, url: 'tri://h'}\n", `references[0].url: "tri://h" has no port`},
		{"cluster", "references:\n  - {interface: a, cluster: broadcast}\n", `references[0].cluster: "broadcast" is not a cluster strategy; use failover or failfast`},
		{"ring hash key", "references:\n  - {interface: a, balancer: ring_hash}\n", "references[0].hashKey: empty; ring_hash needs"},
		{"retries", "references:\n  - {interface: a, retries: 1000}\n", "references[0].retries: 1000 is too many"},
		{"reference twice", "references:\n  - {interface: a}\n  - {interface: a}\n", `references[1].name: "a" is used twice`},
		{"providedBy spaces", "references:\n  - {interface: a, providedBy: 'greeter app'}\n", `references[0].providedBy: "greeter app" has spaces; name the application that provides a`},
		{"providedBy blank", "references:\n  - {interface: a, providedBy: ' '}\n", `references[0].providedBy: " " has spaces`},
		{"providedBy with url", "references:\n  - {interface: a, url: 'tri://h:1', providedBy: greeter}\n", `references[0].providedBy: "greeter" is set with url: url calls those providers directly`},
		{"providedBy with target", "references:\n  - {interface: 'xds:///greeter.default.svc.cluster.local:20000', providedBy: greeter}\n", `references[0].providedBy: "greeter" is set with interface "xds:///greeter.default.svc.cluster.local:20000", a target`},
		{"filter twice", "filters: {client: [a, a]}\n", `filters.client[1]: "a" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yaml)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	_, err := load(t, "logging: {level: loud, format: xml}\nreferences:\n  - {}\n")
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want 3 problems, one per line; got %v", err)
	}
}

func TestFileSources(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.yaml")
	if err := os.WriteFile(path, []byte("application: {name: from-file}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(config.WithFile(path), config.WithEnv(noEnv))
	if err != nil || c.Application.Name != "from-file" {
		t.Fatalf("WithFile: %v, %v", c, err)
	}
	c, err = config.Load(env(map[string]string{"SHOAL_CONFIG": path}))
	if err != nil || c.Application.Name != "from-file" {
		t.Fatalf("SHOAL_CONFIG: %v, %v", c, err)
	}
	_, err = config.Load(config.WithFile(filepath.Join(dir, "missing.yaml")), config.WithEnv(noEnv))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml: cannot read the configuration") {
		t.Errorf("missing named file: %v", err)
	}
	c, err = config.Load(config.WithoutFile(), config.WithEnv(noEnv), config.WithApplicationName("bare"))
	if err != nil || c.Application.Name != "bare" {
		t.Errorf("WithoutFile: %v, %v", c, err)
	}
}
