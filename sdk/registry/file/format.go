package file

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// document is the file's schema.
type document struct {
	Services map[string]*service `yaml:"services"`
}

type service struct {
	Instances    []instance    `yaml:"instances,omitempty"`
	LoadBalancer *loadBalancer `yaml:"loadBalancer,omitempty"`
	Subsets      []subset      `yaml:"subsets,omitempty"`
	Routes       []route       `yaml:"routes,omitempty"`
}

type instance struct {
	Address  string            `yaml:"address"`
	Group    string            `yaml:"group,omitempty"`
	Version  string            `yaml:"version,omitempty"`
	Weight   uint32            `yaml:"weight,omitempty"`
	Labels   map[string]string `yaml:"labels,omitempty"`
	Health   string            `yaml:"health,omitempty"`
	Locality *locality         `yaml:"locality,omitempty"`
	// Owner is the process that registered the instance; Register sets it.
	// An instance whose owner ran on this host and is gone is skipped, so
	// a provider killed before it could deregister does not linger.
	Owner *owner `yaml:"owner,omitempty"`
}

type owner struct {
	Host string `yaml:"host"`
	PID  int    `yaml:"pid"`
}

// gone reports whether the owner ran on this host and has exited.
func (o *owner) gone() bool {
	return o != nil && o.PID > 0 && o.Host == thisHost && !processAlive(o.PID)
}

type locality struct {
	Region  string `yaml:"region,omitempty"`
	Zone    string `yaml:"zone,omitempty"`
	SubZone string `yaml:"subZone,omitempty"`
}

type loadBalancer struct {
	Kind        string `yaml:"kind"`
	HashHeader  string `yaml:"hashHeader,omitempty"`
	MinRingSize uint64 `yaml:"minRingSize,omitempty"`
}

type subset struct {
	Name         string            `yaml:"name"`
	Labels       map[string]string `yaml:"labels,omitempty"`
	LoadBalancer *loadBalancer     `yaml:"loadBalancer,omitempty"`
}

type route struct {
	Name    string        `yaml:"name,omitempty"`
	Match   []match       `yaml:"match,omitempty"`
	Route   []destination `yaml:"route"`
	Timeout duration      `yaml:"timeout,omitempty"`
	Retries *retries      `yaml:"retries,omitempty"`
}

type match struct {
	Name           string                 `yaml:"name,omitempty"`
	Path           *stringMatch           `yaml:"path,omitempty"`
	Headers        map[string]stringMatch `yaml:"headers,omitempty"`
	WithoutHeaders map[string]stringMatch `yaml:"withoutHeaders,omitempty"`
}

type stringMatch struct {
	Exact   *string `yaml:"exact,omitempty"`
	Prefix  *string `yaml:"prefix,omitempty"`
	Suffix  *string `yaml:"suffix,omitempty"`
	Regex   *string `yaml:"regex,omitempty"`
	Present bool    `yaml:"present,omitempty"`
}

type destination struct {
	Service string `yaml:"service,omitempty"`
	Subset  string `yaml:"subset,omitempty"`
	Weight  uint32 `yaml:"weight,omitempty"`
}

type retries struct {
	Attempts      uint32   `yaml:"attempts"`
	PerTryTimeout duration `yaml:"perTryTimeout,omitempty"`
	RetryOn       string   `yaml:"retryOn,omitempty"`
}

// duration reads "2s", "500ms".
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration; write it like 500ms or 2s", n.Line, s)
	}
	*d = duration(v)
	return nil
}

func (d duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (d duration) IsZero() bool { return d == 0 }

// parse decodes and checks a file, reporting every problem with its path.
func parse(data []byte) (*document, error) {
	doc := &document{}
	if len(bytes.TrimSpace(data)) == 0 {
		return doc, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(doc); err != nil {
		return nil, fmt.Errorf("not valid registry YAML: %w; see the format in the documentation of package github.com/shoalmesh/shoal/sdk/registry/file", err)
	}
	if doc.Services == nil {
		doc.Services = map[string]*service{}
	}
	var errs []error
	for _, name := range sortedNames(doc) {
		// Check each group/version combination on its own: one address may
		// serve several versions of an interface.
		for _, k := range keysOf(name, doc.Services[name]) {
			if _, err := doc.snapshot(k); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return doc, errors.Join(dedupe(errs)...)
}

func dedupe(errs []error) []error {
	var out []error
	seen := map[string]bool{}
	for _, e := range errs {
		for _, line := range strings.Split(e.Error(), "\n") {
			if !seen[line] {
				seen[line] = true
				out = append(out, errors.New(line))
			}
		}
	}
	return out
}

func sortedNames(doc *document) []string {
	names := make([]string, 0, len(doc.Services))
	for n := range doc.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func keysOf(name string, s *service) []registry.Key {
	keys := []registry.Key{{Interface: name}}
	if s == nil {
		return keys
	}
	for _, in := range s.Instances {
		k := registry.Key{Interface: name, Group: in.Group, Version: in.Version}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// snapshot builds the state a consumer of key sees. Problems are reported
// with the path of the field in the file.
func (doc *document) snapshot(key registry.Key) (*mesh.Snapshot, error) {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	spec := mesh.Spec{}
	svc := doc.Services[key.Interface]
	var skipped []string
	spec.Services = append(spec.Services, doc.service(key, svc, &skipped, bad))
	used := []*service{svc}
	if svc != nil {
		for i := range svc.Routes {
			r := doc.route(key.Interface, i, &svc.Routes[i], bad)
			spec.Routes = append(spec.Routes, r)
			for _, d := range r.Destinations {
				if d.Service == key.Interface || slices.ContainsFunc(spec.Services, func(s mesh.Service) bool { return s.Name == d.Service }) {
					continue
				}
				other, ok := doc.Services[d.Service]
				if !ok {
					bad(fmt.Sprintf("services.%s.routes[%d]", key.Interface, i), "destination service %q is not in the file; add it under services", d.Service)
					continue
				}
				spec.Services = append(spec.Services, doc.service(registry.Key{Interface: d.Service, Group: key.Group, Version: key.Version}, other, &skipped, bad))
				used = append(used, other)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	spec.Revision = revision(key, used, skipped)
	snap, err := mesh.NewSnapshot(spec)
	if err != nil {
		return nil, fmt.Errorf("services.%s: %w", key.Interface, err)
	}
	return snap, nil
}

func (doc *document) service(key registry.Key, s *service, skipped *[]string, bad func(string, string, ...any)) mesh.Service {
	out := mesh.Service{Name: key.Interface}
	if s == nil {
		return out
	}
	path := "services." + key.Interface
	seen := map[string]registry.Key{}
	for i, in := range s.Instances {
		ip := fmt.Sprintf("%s.instances[%d]", path, i)
		if !key.Accepts(registry.Key{Interface: key.Interface, Group: in.Group, Version: in.Version}) {
			continue
		}
		if in.Owner.gone() {
			*skipped = append(*skipped, in.Address)
			continue
		}
		if err := mesh.ValidateAddress(in.Address); err != nil {
			bad(ip+".address", "%v", err)
			continue
		}
		e := mesh.Endpoint{Address: in.Address, Weight: in.Weight, Labels: in.Labels}
		if in.Health != "" {
			h, ok := mesh.ParseHealthStatus(in.Health)
			if !ok {
				bad(ip+".health", "%q is not a health status; use healthy, unhealthy, draining, degraded or unknown", in.Health)
			}
			e.Health = h
		}
		if in.Locality != nil {
			e.Locality = mesh.Locality{Region: in.Locality.Region, Zone: in.Locality.Zone, SubZone: in.Locality.SubZone}
		}
		ik := registry.Key{Interface: key.Interface, Group: in.Group, Version: in.Version}
		if prev, dup := seen[e.Address]; dup {
			if prev == ik {
				bad(ip+".address", "%s is listed twice for %s; list each provider once", e.Address, ik)
			}
			continue // one address serving several accepted versions: one endpoint
		}
		seen[e.Address] = ik
		out.Endpoints = append(out.Endpoints, e)
	}
	out.Policy.LoadBalancer = lbPolicy(path+".loadBalancer", s.LoadBalancer, bad)
	for i, sub := range s.Subsets {
		sp := fmt.Sprintf("%s.subsets[%d]", path, i)
		if sub.Name == "" {
			bad(sp+".name", "empty; name the subset, such as canary")
		}
		out.Subsets = append(out.Subsets, mesh.Subset{
			Name: sub.Name, Labels: sub.Labels,
			Policy: mesh.ClusterPolicy{LoadBalancer: lbPolicy(sp+".loadBalancer", sub.LoadBalancer, bad)},
		})
	}
	return out
}

func lbPolicy(path string, lb *loadBalancer, bad func(string, string, ...any)) *mesh.LoadBalancer {
	if lb == nil {
		return nil
	}
	k, err := mesh.ParseLBKind(lb.Kind)
	if err != nil {
		bad(path+".kind", "%v", err)
		return nil
	}
	out := &mesh.LoadBalancer{Kind: k}
	if k == mesh.LBRingHash || k == mesh.LBMaglev {
		if lb.HashHeader == "" {
			bad(path+".hashHeader", "empty; %s needs the header or attachment to hash, such as x-user", k)
		}
		out.ConsistentHash = &mesh.ConsistentHash{Source: mesh.HashHeader, Name: lb.HashHeader, MinRingSize: lb.MinRingSize}
	} else if lb.HashHeader != "" || lb.MinRingSize != 0 {
		bad(path, "hashHeader and minRingSize apply to ring_hash only; remove them or set kind: ring_hash")
	}
	return out
}

func (doc *document) route(svc string, i int, r *route, bad func(string, string, ...any)) mesh.Route {
	path := fmt.Sprintf("services.%s.routes[%d]", svc, i)
	out := mesh.Route{Name: r.Name, Policy: mesh.RoutePolicy{Timeout: time.Duration(r.Timeout)}}
	for j, m := range r.Match {
		mp := fmt.Sprintf("%s.match[%d]", path, j)
		rm := mesh.RouteMatch{Name: m.Name}
		if m.Path != nil {
			rm.Path = m.Path.toMesh(mp+".path", false, bad)
		}
		for _, h := range sortedKeys(m.Headers) {
			sm := m.Headers[h]
			rm.Headers = append(rm.Headers, mesh.HeaderMatch{Name: h, Value: sm.toMesh(mp+".headers."+h, true, bad)})
		}
		for _, h := range sortedKeys(m.WithoutHeaders) {
			sm := m.WithoutHeaders[h]
			rm.Headers = append(rm.Headers, mesh.HeaderMatch{Name: h, Value: sm.toMesh(mp+".withoutHeaders."+h, true, bad), Invert: true})
		}
		out.Matches = append(out.Matches, rm)
	}
	if len(r.Route) == 0 {
		bad(path+".route", "empty; list at least one destination, such as - {subset: stable}")
	}
	subsets := map[string]bool{}
	if s := doc.Services[svc]; s != nil {
		for _, sub := range s.Subsets {
			subsets[sub.Name] = true
		}
	}
	for j, d := range r.Route {
		dest := mesh.Destination{Service: d.Service, Subset: d.Subset}
		if dest.Service == "" {
			dest.Service = svc
		}
		if dest.Service == svc && dest.Subset != "" && !subsets[dest.Subset] {
			bad(fmt.Sprintf("%s.route[%d].subset", path, j), "%q is not a subset of %s; define it under subsets", d.Subset, svc)
		}
		out.Destinations = append(out.Destinations, mesh.WeightedDestination{Destination: dest, Weight: d.Weight})
	}
	if r.Retries != nil {
		on, err := mesh.ParseRetryOn(r.Retries.RetryOn)
		if err != nil {
			bad(path+".retries.retryOn", "%v", err)
		}
		out.Policy.Retry = &mesh.RetryPolicy{Attempts: r.Retries.Attempts, PerTryTimeout: time.Duration(r.Retries.PerTryTimeout), On: on}
	}
	return out
}

func (m *stringMatch) toMesh(path string, header bool, bad func(string, string, ...any)) mesh.StringMatch {
	set := 0
	var out mesh.StringMatch
	if m.Exact != nil {
		set++
		out = mesh.Exact(*m.Exact)
	}
	if m.Prefix != nil {
		set++
		out = mesh.Prefix(*m.Prefix)
	}
	if m.Suffix != nil {
		set++
		out = mesh.Suffix(*m.Suffix)
	}
	if m.Regex != nil {
		set++
		re, err := mesh.Regex(*m.Regex)
		if err != nil {
			bad(path+".regex", "%v", err)
		}
		out = re
	}
	if m.Present {
		if !header {
			bad(path+".present", "only headers can be tested for presence")
		}
		set++
	}
	if set != 1 {
		bad(path, "set exactly one of exact, prefix, suffix, regex%s", map[bool]string{true: " or present: true", false: ""}[header])
	}
	return out
}

func sortedKeys(m map[string]stringMatch) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// revision fingerprints what a consumer of key sees, so watchers wake only
// when their part of the file changed.
func revision(key registry.Key, used []*service, skipped []string) string {
	b, err := yaml.Marshal(used)
	if err != nil { // plain data always marshals
		panic(err)
	}
	return fmt.Sprintf("file-%016x", fingerprint(key.String()+"\x00"+string(b)+"\x00"+strings.Join(skipped, ",")))
}

func fingerprint(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
