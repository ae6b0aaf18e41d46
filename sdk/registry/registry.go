package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode"

	"github.com/shoalmesh/shoal/sdk/internal/plugin"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Key says which provider flavour a consumer wants: an interface, and
// optionally a group and a version.
type Key struct {
	// Interface is the service's interface name, e.g. "greet.GreetService".
	Interface string
	// Group and Version narrow the providers; "*" accepts any, and Group
	// may list several groups separated by commas (Dubbo's rules).
	Group   string
	Version string
	// ProvidedBy, when set, names the application that provides the
	// interface (Dubbo's providedBy): an app-level reference. It is a hint
	// for registries that find providers by application; what a name may
	// look like, and whether it is used at all, is the registry's to say
	// (registry-istio resolves it to the application's host and routes the
	// interface's calls there; the file and direct registries ignore it).
	// It is not part of a provider's identity: Accepts ignores it, and an
	// Instance cannot set it.
	ProvidedBy string
}

// Any is the wildcard for Key.Group and Key.Version.
const Any = "*"

// String returns "group/interface:version" with the empty parts left out,
// as Dubbo prints service keys.
func (k Key) String() string {
	s := k.Interface
	if k.Group != "" {
		s = k.Group + "/" + s
	}
	if k.Version != "" {
		s += ":" + k.Version
	}
	if k.ProvidedBy != "" {
		s += " (provided by " + k.ProvidedBy + ")"
	}
	return s
}

// Validate reports a missing interface name and a malformed ProvidedBy:
// blank, with spaces, or next to an interface that is already a target
// URI (such as xds:///host:port), which says where to go by itself.
func (k Key) Validate() error {
	if strings.TrimSpace(k.Interface) == "" {
		return errors.New("registry: empty interface name; set it to the service's interface, such as greet.GreetService")
	}
	if k.ProvidedBy == "" {
		return nil
	}
	if strings.TrimSpace(k.ProvidedBy) == "" || strings.ContainsFunc(k.ProvidedBy, unicode.IsSpace) {
		return fmt.Errorf("registry: %s: providedBy %q has spaces; name the providing application, such as greeter", k.Interface, k.ProvidedBy)
	}
	if strings.Contains(k.Interface, "://") {
		return fmt.Errorf("registry: %s is a target and providedBy %q names an application: both say where to go; keep the interface name with providedBy, or the target alone", k.Interface, k.ProvidedBy)
	}
	return nil
}

// Accepts reports whether a provider registered under p serves consumers
// asking for k: the interfaces are equal, the group is "*", equal, or in
// k's comma-separated list, and the version is "*" or equal. ProvidedBy
// plays no part: it tells a registry where to look, not what to accept.
func (k Key) Accepts(p Key) bool {
	if k.Interface != p.Interface {
		return false
	}
	if k.Group != Any && k.Group != p.Group {
		found := false
		if strings.Contains(k.Group, ",") {
			for g := range strings.SplitSeq(k.Group, ",") {
				if strings.TrimSpace(g) == p.Group {
					found = true
					break
				}
			}
		}
		if !found {
			return false
		}
	}
	return k.Version == Any || k.Version == p.Version
}

// Instance is one provider of one service at one address.
type Instance struct {
	Key
	// Address is where the provider listens, host:port.
	Address string
	// Protocol is the wire protocol; empty means "tri".
	Protocol string
	// Weight is the provider's relative share; 0 means 1.
	Weight uint32
	// Labels are free-form metadata (zone, version label for subsets).
	Labels map[string]string
	// Locality says where the provider runs.
	Locality mesh.Locality
}

// Validate checks the fields a registry needs.
func (i *Instance) Validate() error {
	var errs []error
	if err := i.Key.Validate(); err != nil {
		errs = append(errs, err)
	}
	if i.Group == Any || i.Version == Any {
		errs = append(errs, fmt.Errorf("registry: instance %s: a provider cannot register with group or version %q; give its real group and version", i.Key, Any))
	}
	if i.ProvidedBy != "" {
		errs = append(errs, fmt.Errorf("registry: instance %s: ProvidedBy is for consumers' references; a provider's application is its registry's business (leave it empty)", i.Key))
	}
	if err := mesh.ValidateAddress(i.Address); err != nil {
		errs = append(errs, fmt.Errorf("registry: instance %s: address %w; register the address consumers can reach", i.Key, err))
	}
	return errors.Join(errs...)
}

// Endpoint converts the instance to a mesh endpoint.
func (i *Instance) Endpoint() mesh.Endpoint {
	return mesh.Endpoint{Address: i.Address, Weight: i.Weight, Labels: i.Labels, Locality: i.Locality}
}

// Registrar announces providers.
type Registrar interface {
	// Register makes the instance visible to consumers.
	Register(ctx context.Context, inst Instance) error
	// Deregister removes it; consumers stop sending new calls to it.
	Deregister(ctx context.Context, inst Instance) error
}

// Discovery finds providers.
type Discovery interface {
	// Watch starts watching the providers and routes for a key.
	Watch(ctx context.Context, key Key) (Watcher, error)
}

// Watcher delivers the states of one watched key.
type Watcher interface {
	// Next returns the current snapshot on the first call, and afterwards
	// blocks until the state changes, ctx ends or the watcher is closed.
	// After Close it returns ErrClosed.
	Next(ctx context.Context) (*mesh.Snapshot, error)
	// Close stops the watcher and releases what it holds.
	Close() error
}

// Registry is a registrar and a discovery in one, as most backends are.
// Implementations that cannot register return an error wrapping
// errors.ErrUnsupported from Register and Deregister.
type Registry interface {
	Registrar
	Discovery
	io.Closer
}

// ErrClosed is returned by Watcher.Next after Close.
var ErrClosed = errors.New("registry: watcher closed")

// Config is what a builder gets from shoal.yaml or code.
type Config struct {
	// Name is the registry's name in the application's configuration.
	Name string
	// Address is builder-specific: a file path, a list of URLs, an xDS
	// server address.
	Address string
	// Params are builder-specific settings.
	Params map[string]string
	// Logger receives the registry's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Builder makes registries of one kind.
type Builder interface {
	// Name is the kind, e.g. "file", as written in shoal.yaml.
	Name() string
	// Build makes a registry. It fails fast on a bad configuration.
	Build(ctx context.Context, cfg Config) (Registry, error)
}

// Builders is a set of registry builders by kind. The zero value is not
// ready; use NewBuilders.
type Builders struct{ set plugin.Set[Builder] }

// NewBuilders returns a set holding the given builders.
func NewBuilders(builders ...Builder) *Builders {
	b := &Builders{}
	b.set.Kind = "registry kind"
	for _, x := range builders {
		b.Register(x)
	}
	return b
}

// Register adds b, replacing a builder of the same kind. It panics on an
// empty name, a programming error.
func (b *Builders) Register(x Builder) {
	if err := b.set.Register(x); err != nil {
		panic(err)
	}
}

// Get returns the builder for a kind.
func (b *Builders) Get(kind string) (Builder, error) { return b.set.Get(kind) }

// Names lists the registered kinds.
func (b *Builders) Names() []string { return b.set.Names() }

// Default is the global set. The sdk's packages do not register into it by
// themselves; the config package fills a fresh set with the built-ins.
var Default = NewBuilders()
