package direct

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// Name is the registry kind, as written in shoal.yaml.
const Name = "direct"

// Registry serves a fixed list of providers.
type Registry struct {
	targets []target
	feed    registry.Feed
}

type target struct {
	raw       string
	iface     string // empty: any interface
	group     string // empty: any group
	version   string // empty: any version
	endpoint  mesh.Endpoint
	hasGroup  bool
	hasVerson bool
}

// New parses the URLs. Every bad URL is reported, joined, with what to
// write instead.
func New(urls ...string) (*Registry, error) {
	r := &Registry{}
	var errs []error
	for i, raw := range urls {
		t, err := parse(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("direct registry: url[%d] %q: %w", i, raw, err))
			continue
		}
		r.targets = append(r.targets, t)
	}
	if len(urls) == 0 {
		errs = append(errs, errors.New("direct registry: no URLs; give at least one, such as tri://127.0.0.1:50051"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r.feed.Publish(r.view)
	return r, nil
}

func parse(raw string) (target, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return target{}, fmt.Errorf("not a URL (%w); write tri://host:port", err)
	}
	if u.Scheme != "tri" {
		return target{}, fmt.Errorf("scheme %q is not supported; write tri://host:port", u.Scheme)
	}
	if err := mesh.ValidateAddress(u.Host); err != nil {
		return target{}, fmt.Errorf("address %w", err)
	}
	t := target{raw: raw, iface: strings.Trim(u.Path, "/"), endpoint: mesh.Endpoint{Address: u.Host, Weight: 1}}
	q := u.Query()
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "group":
			t.group, t.hasGroup = v, true
		case "version":
			t.version, t.hasVerson = v, true
		case "weight":
			w, err := strconv.ParseUint(v, 10, 32)
			if err != nil || w == 0 {
				return target{}, fmt.Errorf("weight %q: want a whole number from 1 to 4294967295", v)
			}
			t.endpoint.Weight = uint32(w)
		case "health":
			h, ok := mesh.ParseHealthStatus(v)
			if !ok {
				return target{}, fmt.Errorf("health %q: use healthy, unhealthy, draining, degraded or unknown", v)
			}
			t.endpoint.Health = h
		default:
			if t.endpoint.Labels == nil {
				t.endpoint.Labels = map[string]string{}
			}
			t.endpoint.Labels[k] = v
		}
	}
	return t, nil
}

func (t *target) serves(k registry.Key) bool {
	if t.iface != "" && t.iface != k.Interface {
		return false
	}
	p := registry.Key{Interface: k.Interface, Group: k.Group, Version: k.Version}
	if t.hasGroup {
		p.Group = t.group
	}
	if t.hasVerson {
		p.Version = t.version
	}
	return k.Accepts(p)
}

func (r *Registry) view(k registry.Key) *mesh.Snapshot {
	svc := mesh.Service{Name: k.Interface}
	h := sha256.New()
	for i := range r.targets {
		t := &r.targets[i]
		if !t.serves(k) || slices.ContainsFunc(svc.Endpoints, func(e mesh.Endpoint) bool { return e.Address == t.endpoint.Address }) {
			continue
		}
		svc.Endpoints = append(svc.Endpoints, t.endpoint)
		h.Write([]byte(t.raw))
		h.Write([]byte{0})
	}
	s, err := mesh.NewSnapshot(mesh.Spec{Revision: "direct-" + hex.EncodeToString(h.Sum(nil)[:8]), Services: []mesh.Service{svc}})
	if err != nil { // cannot happen: every URL was validated
		panic(err)
	}
	return s
}

// Watch returns a watcher of the URLs that serve key.
func (r *Registry) Watch(_ context.Context, key registry.Key) (registry.Watcher, error) {
	if err := key.Validate(); err != nil {
		return nil, err
	}
	return r.feed.Watch(key), nil
}

// Register fails: a static list cannot take new providers.
func (r *Registry) Register(context.Context, registry.Instance) error {
	return fmt.Errorf("direct registry: cannot register providers (%w); use the file registry or a mesh registry for providers", errors.ErrUnsupported)
}

// Deregister fails like Register.
func (r *Registry) Deregister(context.Context, registry.Instance) error {
	return r.Register(context.Background(), registry.Instance{})
}

// Close ends every watcher.
func (r *Registry) Close() error {
	r.feed.Close()
	return nil
}

// Builder returns the builder of kind "direct". Its Config.Address is a
// comma- or space-separated list of URLs.
func Builder() registry.Builder { return builder{} }

type builder struct{}

func (builder) Name() string { return Name }

func (builder) Build(_ context.Context, cfg registry.Config) (registry.Registry, error) {
	urls := strings.FieldsFunc(cfg.Address, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	return New(urls...)
}
