package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole of shoal.yaml.
type Config struct {
	Application Application `yaml:"application"`
	Logging     Logging     `yaml:"logging"`
	Registries  []Registry  `yaml:"registries"`
	Protocols   []Protocol  `yaml:"protocols"`
	Services    []Service   `yaml:"services"`
	References  []Reference `yaml:"references"`
	Filters     Filters     `yaml:"filters"`
	// Observability is read by the observability module.
	Observability Observability `yaml:"observability"`
}

// Application describes this process.
type Application struct {
	// Name identifies the application to providers (tri-consumer-appname)
	// and in logs. Default: the executable's name.
	Name string `yaml:"name"`
	// Labels are this workload's labels, matched by routes' sourceLabels.
	Labels map[string]string `yaml:"labels"`
	// DrainDelay is how long a stopping provider waits between
	// deregistering and shutting its servers down, for consumers to notice.
	// Default: 1s.
	DrainDelay *Duration `yaml:"drainDelay"`
	// ShutdownTimeout bounds the whole stop, in-flight calls included.
	// Default: 30s.
	ShutdownTimeout Duration `yaml:"shutdownTimeout"`
}

// Logging configures the log/slog logger the sdk builds.
type Logging struct {
	// Level is debug, info, warn or error. Default: info.
	Level string `yaml:"level"`
	// Format is text or json. Default: text.
	Format string `yaml:"format"`
}

// Registry is one registry or discovery backend.
type Registry struct {
	// Name is how services and references refer to it.
	Name string `yaml:"name"`
	// Kind selects the implementation: file, direct, or a plug-in's name.
	Kind string `yaml:"kind"`
	// Address is kind-specific: the file's path, the URLs, the server.
	Address string `yaml:"address"`
	// Params are kind-specific settings.
	Params map[string]string `yaml:"params"`
}

// Protocol is one server this application listens on.
type Protocol struct {
	// Name is the protocol; only "tri" (Triple) exists today.
	Name string `yaml:"name"`
	// Host is the address to listen on; empty means all interfaces.
	Host string `yaml:"host"`
	// Port to listen on; 0 picks a free port. Default: 50051.
	Port int `yaml:"port"`
	// AdvertiseHost is the host registered for consumers to dial. Empty
	// means Host when it is a specific address; when Host is empty (all
	// interfaces), 127.0.0.1 if every registry is a file registry (one
	// machine), else this machine's first non-loopback IPv4 address. The
	// first protocol that sets it sets it for all.
	AdvertiseHost string `yaml:"advertiseHost"`
}

// Service is one provided interface.
type Service struct {
	Interface string `yaml:"interface"`
	Group     string `yaml:"group"`
	Version   string `yaml:"version"`
	// Protocols names the protocols to serve it on. Default: all.
	Protocols []string `yaml:"protocols"`
	// Registries names the registries to register it in. Default: all.
	Registries []string `yaml:"registries"`
	// Weight is the instance's share of calls. Default: 1.
	Weight uint32 `yaml:"weight"`
	// Labels are registered with the instance (subsets select on them).
	Labels map[string]string `yaml:"labels"`
}

// Reference is one consumed interface.
type Reference struct {
	// Name identifies the reference in code. Default: the interface name.
	Name      string `yaml:"name"`
	Interface string `yaml:"interface"`
	Group     string `yaml:"group"`
	Version   string `yaml:"version"`
	// ProvidedBy names the application that provides the interface, as
	// Dubbo's providedBy does: an app-level reference. The registry decides
	// what it means (registry-istio calls the application's host; the file
	// and direct registries ignore it). It cannot be combined with URL or
	// with an interface that is a target URI (xds:///host:port).
	ProvidedBy string `yaml:"providedBy"`
	// Registry names the registry to discover providers in. Default: the
	// first registry. Ignored when URL is set.
	Registry string `yaml:"registry"`
	// URL, when set, calls these providers directly: tri://host:port,
	// several separated by commas.
	URL string `yaml:"url"`
	// Balancer is round_robin, random, least_request, ring_hash or a
	// registered plug-in. Default: round_robin.
	Balancer string `yaml:"balancer"`
	// HashKey is the header or attachment ring_hash hashes.
	HashKey string `yaml:"hashKey"`
	// Router is the router's name. Default: service (see package router).
	Router string `yaml:"router"`
	// Cluster is failover or failfast. Default: failover.
	Cluster string `yaml:"cluster"`
	// Retries after the first try, for failover. Default: 2.
	Retries *uint32 `yaml:"retries"`
	// Timeout of each call, retries included. Default: 3s, as Dubbo.
	Timeout Duration `yaml:"timeout"`
	// WaitForReady makes calls wait, within their timeout, for a provider
	// to appear instead of failing at once with UNAVAILABLE.
	WaitForReady bool `yaml:"waitForReady"`
}

// Filters lists filters by name, in the order they run.
type Filters struct {
	Client []string `yaml:"client"`
	Server []string `yaml:"server"`
}

// Duration is a time.Duration written as "3s" or "500ms".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String returns the duration string, e.g. "3s".
func (d Duration) String() string { return time.Duration(d).String() }

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write it with a unit, like 3s or 500ms", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative; use 0 for none", s)
	}
	return v, nil
}

// Defaults used when a field is left empty.
const (
	DefaultPort     = 50051
	DefaultTimeout  = 3 * time.Second
	DefaultRetries  = 2
	DefaultBalancer = "round_robin"
	DefaultCluster  = "failover"
	DefaultRouter   = "service"
	DefaultRegistry = "default"

	DefaultDrainDelay      = time.Second
	DefaultShutdownTimeout = 30 * time.Second
)

// Reference returns the reference named name.
func (c *Config) Reference(name string) (Reference, bool) {
	for _, r := range c.References {
		if r.Name == name {
			return r, true
		}
	}
	return Reference{}, false
}

// RegistryByName returns the registry named name.
func (c *Config) RegistryByName(name string) (Registry, bool) {
	for _, r := range c.Registries {
		if r.Name == name {
			return r, true
		}
	}
	return Registry{}, false
}
