package mesh

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/shoalmesh/shoal/sdk/call"
)

// Spec is the input to NewSnapshot: everything a Discovery knows about one
// watched interface and the services its routes lead to.
type Spec struct {
	// Revision identifies the state, e.g. an xDS version or a file's hash;
	// it appears in logs.
	Revision string
	// Services are the watched service and every service a route names.
	Services []Service
	// Routes are evaluated in order. With no routes, calls go to the
	// watched service as a whole.
	Routes []Route
}

// Snapshot is a validated, immutable view of Spec with every cluster
// resolved. It is safe for concurrent use; nothing it returns may be
// modified.
type Snapshot struct {
	revision string
	services []Service
	routes   []Route
	clusters map[Destination]*Cluster
	ordered  []*Cluster
	// table is routes compiled for matching.
	table routeTable
}

// NewSnapshot validates spec and freezes a deep copy of it. Every problem is
// reported, joined, each naming the field path and the fix.
func NewSnapshot(spec Spec) (*Snapshot, error) {
	s := &Snapshot{
		revision: spec.Revision,
		services: make([]Service, len(spec.Services)),
		routes:   make([]Route, len(spec.Routes)),
		clusters: make(map[Destination]*Cluster),
	}
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("mesh: %s: %s", path, fmt.Sprintf(format, args...)))
	}
	seen := make(map[string]bool, len(spec.Services))
	for i := range spec.Services {
		svc := cloneService(&spec.Services[i])
		s.services[i] = svc
		path := "services[" + strconv.Itoa(i) + "]"
		if svc.Name == "" {
			bad(path+".name", "empty; set it to the interface name or host, such as greet.GreetService")
			continue
		}
		if seen[svc.Name] {
			bad(path+".name", "%q appears twice; merge the two entries", svc.Name)
			continue
		}
		seen[svc.Name] = true
		validateEndpoints(path, s.services[i].Endpoints, bad)
		validatePolicy(path+".policy", svc.Policy, bad)
		all := pointers(s.services[i].Endpoints)
		s.clusters[Destination{Service: svc.Name}] = newCluster(Destination{Service: svc.Name}, svc.Policy, all)
		subsetSeen := map[string]bool{}
		for j := range s.services[i].Subsets {
			sub := &s.services[i].Subsets[j]
			sp := path + ".subsets[" + strconv.Itoa(j) + "]"
			if sub.Name == "" {
				bad(sp+".name", "empty; name the subset, such as v1")
				continue
			}
			if subsetSeen[sub.Name] {
				bad(sp+".name", "%q appears twice in service %s; subset names must be unique", sub.Name, svc.Name)
				continue
			}
			subsetSeen[sub.Name] = true
			validatePolicy(sp+".policy", sub.Policy, bad)
			var eps []*Endpoint
			if len(sub.Endpoints) > 0 {
				validateEndpoints(sp, sub.Endpoints, bad)
				eps = pointers(sub.Endpoints)
			} else {
				for _, e := range all {
					if selects(sub.Labels, e.Labels) {
						eps = append(eps, e)
					}
				}
			}
			d := Destination{Service: svc.Name, Subset: sub.Name}
			s.clusters[d] = newCluster(d, svc.Policy.overriddenBy(sub.Policy), eps)
		}
	}
	for i := range spec.Routes {
		s.routes[i] = cloneRoute(&spec.Routes[i])
		validateRoute("routes["+strconv.Itoa(i)+"]", &s.routes[i], bad)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.table = compileRoutes(s.routes)
	for _, c := range s.clusters {
		s.ordered = append(s.ordered, c)
	}
	slices.SortFunc(s.ordered, func(a, b *Cluster) int { return strings.Compare(a.dest.String(), b.dest.String()) })
	return s, nil
}

// Revision returns the revision given in Spec.
func (s *Snapshot) Revision() string { return s.revision }

// Services returns the services. Shared: do not modify.
func (s *Snapshot) Services() []Service { return s.services }

// Routes returns the routes in evaluation order. Shared: do not modify.
func (s *Snapshot) Routes() []Route { return s.routes }

// Cluster returns the resolved cluster for a destination. It reports false
// when the service or subset is unknown, which callers should treat as "no
// healthy upstream" (UNAVAILABLE), as Envoy does.
func (s *Snapshot) Cluster(d Destination) (*Cluster, bool) {
	c, ok := s.clusters[d]
	return c, ok
}

// Clusters returns every resolved cluster, ordered by service and subset.
func (s *Snapshot) Clusters() []*Cluster { return s.ordered }

// Match returns the first route matching the call, or nil.
func (s *Snapshot) Match(path string, a call.Attachments, source map[string]string) *Route {
	if i := s.MatchIndex(path, a, source); i >= 0 {
		return &s.routes[i]
	}
	return nil
}

// MatchIndex returns the index in Routes of the first route matching the
// call, or -1. Callers that keep per-route state in a slice parallel to
// Routes use it instead of Match. It does not allocate, unless a
// case-insensitive matcher reads a value with non-ASCII characters.
func (s *Snapshot) MatchIndex(path string, a call.Attachments, source map[string]string) int {
	return s.table.match(path, a, source)
}

func validateEndpoints(path string, eps []Endpoint, bad func(string, string, ...any)) {
	seen := make(map[string]bool, len(eps))
	for k := range eps {
		e := &eps[k]
		ep := path + ".endpoints[" + strconv.Itoa(k) + "]"
		if err := ValidateAddress(e.Address); err != nil {
			bad(ep+".address", "%v", err)
		} else if seen[e.Address] {
			bad(ep+".address", "%q appears twice; list each endpoint once and use weight for a bigger share", e.Address)
		}
		seen[e.Address] = true
		if e.Weight == 0 {
			e.Weight = 1
		}
		if int(e.Health) >= len(healthNames) {
			bad(ep+".health", "%d is not a health status; use one of %s", e.Health, strings.Join(healthNames[:], ", "))
		}
	}
}

// ValidateAddress checks that addr is host:port with a port from 1 to
// 65535, and says how to write it if not.
func ValidateAddress(addr string) error {
	if addr == "" {
		return errors.New("empty; write host:port such as 10.0.0.7:50051")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (%w); write it like 10.0.0.7:50051 or [::1]:50051", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host; write it like 10.0.0.7:50051", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	return nil
}

func validatePolicy(path string, p ClusterPolicy, bad func(string, string, ...any)) {
	validateTLS(path, p.TLS, bad)
	if lb := p.LoadBalancer; lb != nil {
		if int(lb.Kind) >= len(lbKindNames) {
			bad(path+".loadBalancer.kind", "%d is not a load balancer kind", lb.Kind)
		}
		if lb.Kind == LBRingHash || lb.Kind == LBMaglev {
			ch := lb.ConsistentHash
			switch {
			case ch == nil:
				bad(path+".loadBalancer.consistentHash", "missing for %s; say which header or attachment to hash", lb.Kind)
			case ch.Source < HashHeader || ch.Source > HashQueryParameter:
				bad(path+".loadBalancer.consistentHash.source", "unset or unknown; use header, cookie, source IP or query parameter")
			case ch.Source != HashSourceIP && ch.Name == "":
				bad(path+".loadBalancer.consistentHash.name", "empty; name the header, attachment, cookie or parameter to hash")
			}
		}
		if lb.WarmupDuration < 0 {
			bad(path+".loadBalancer.warmupDuration", "negative (%s); use 0 for no warm-up", lb.WarmupDuration)
		}
		if l := lb.Locality; l != nil {
			for i, d := range l.Distribute {
				var sum uint64
				for _, w := range d.To {
					sum += uint64(w)
				}
				if d.From == "" || sum != 100 {
					bad(fmt.Sprintf("%s.loadBalancer.locality.distribute[%d]", path, i), "from %q, weights sum to %d: name the source locality and make the weights sum to 100", d.From, sum)
				}
			}
			for i, f := range l.Failover {
				if f.From == "" || f.To == "" || f.From == f.To {
					bad(fmt.Sprintf("%s.loadBalancer.locality.failover[%d]", path, i), "from %q to %q: name two different regions", f.From, f.To)
				}
			}
			if len(l.Distribute) > 0 && len(l.Failover) > 0 {
				bad(path+".loadBalancer.locality", "distribute and failover are both set; Istio allows only one of them")
			}
		}
	}
	if cp := p.ConnectionPool; cp != nil {
		if cp.ConnectTimeout < 0 || cp.IdleTimeout < 0 {
			bad(path+".connectionPool", "negative timeout; use 0 for the default")
		}
	}
	if od := p.OutlierDetection; od != nil {
		if od.MaxEjectionPercent > 100 {
			bad(path+".outlierDetection.maxEjectionPercent", "%d is above 100", od.MaxEjectionPercent)
		}
		if od.MinHealthPercent > 100 {
			bad(path+".outlierDetection.minHealthPercent", "%d is above 100", od.MinHealthPercent)
		}
		if od.Interval < 0 || od.BaseEjectionTime < 0 {
			bad(path+".outlierDetection", "negative interval or ejection time")
		}
	}
}

func validateRoute(path string, r *Route, bad func(string, string, ...any)) {
	for i := range r.Matches {
		for j := range r.Matches[i].Headers {
			if r.Matches[i].Headers[j].Name == "" {
				bad(fmt.Sprintf("%s.matches[%d].headers[%d].name", path, i, j), "empty; name the header or attachment to match")
			}
		}
	}
	if len(r.Destinations) == 0 {
		bad(path+".destinations", "empty; send the route somewhere, e.g. to the watched service")
	}
	for i := range r.Destinations {
		if r.Destinations[i].Service == "" {
			bad(fmt.Sprintf("%s.destinations[%d].service", path, i), "empty; set the destination service")
		}
	}
	if len(r.Destinations) > 1 && r.TotalWeight() == 0 {
		bad(path+".destinations", "all weights are 0; give at least one destination a weight")
	}
	if len(r.Destinations) == 1 && r.Destinations[0].Weight == 0 {
		r.Destinations[0].Weight = 100
	}
	p := &r.Policy
	if p.Timeout < 0 {
		bad(path+".policy.timeout", "negative (%s); use 0 for none", p.Timeout)
	}
	if rt := p.Retry; rt != nil {
		if rt.PerTryTimeout < 0 {
			bad(path+".policy.retry.perTryTimeout", "negative (%s); use 0 for none", rt.PerTryTimeout)
		}
		if rt.Backoff.Base < 0 || rt.Backoff.Max < 0 || (rt.Backoff.Max > 0 && rt.Backoff.Max < rt.Backoff.Base) {
			bad(path+".policy.retry.backoff", "base %s, max %s: both must be >= 0 and max >= base", rt.Backoff.Base, rt.Backoff.Max)
		}
	}
	if f := p.Fault; f != nil {
		if f.Delay != nil {
			checkPercent(path+".policy.fault.delay.percentage", f.Delay.Percentage, bad)
			if f.Delay.Fixed <= 0 {
				bad(path+".policy.fault.delay.fixed", "must be > 0, such as 5s")
			}
		}
		if f.Abort != nil {
			checkPercent(path+".policy.fault.abort.percentage", f.Abort.Percentage, bad)
			if f.Abort.Code == 0 && f.Abort.HTTPStatus == 0 {
				bad(path+".policy.fault.abort", "no code; set a gRPC status such as unavailable (or an HTTP status)")
			}
		}
	}
	for i, m := range p.Mirrors {
		mp := fmt.Sprintf("%s.policy.mirrors[%d]", path, i)
		if m.Service == "" {
			bad(mp+".service", "empty; set the service to mirror to")
		}
		checkPercent(mp+".percentage", m.Percentage, bad)
	}
}

func checkPercent(path string, v float64, bad func(string, string, ...any)) {
	if !(v >= 0 && v <= 100) {
		bad(path, "%v is outside 0 to 100", v)
	}
}

func pointers(eps []Endpoint) []*Endpoint {
	out := make([]*Endpoint, len(eps))
	for i := range eps {
		out[i] = &eps[i]
	}
	return out
}

func cloneEndpoints(in []Endpoint) []Endpoint {
	out := slices.Clone(in)
	for i := range out {
		out[i].Labels = maps.Clone(out[i].Labels)
	}
	return out
}

func clonePolicy(p ClusterPolicy) ClusterPolicy {
	if p.LoadBalancer != nil {
		lb := *p.LoadBalancer
		if lb.ConsistentHash != nil {
			ch := *lb.ConsistentHash
			lb.ConsistentHash = &ch
		}
		if lb.Locality != nil {
			l := *lb.Locality
			l.Distribute = slices.Clone(l.Distribute)
			for i := range l.Distribute {
				l.Distribute[i].To = maps.Clone(l.Distribute[i].To)
			}
			l.Failover = slices.Clone(l.Failover)
			l.FailoverPriority = slices.Clone(l.FailoverPriority)
			lb.Locality = &l
		}
		p.LoadBalancer = &lb
	}
	if p.ConnectionPool != nil {
		cp := *p.ConnectionPool
		p.ConnectionPool = &cp
	}
	p.TLS = cloneTLS(p.TLS)
	if p.OutlierDetection != nil {
		od := *p.OutlierDetection
		p.OutlierDetection = &od
	}
	return p
}

func cloneService(in *Service) Service {
	out := *in
	out.Endpoints = cloneEndpoints(in.Endpoints)
	out.Policy = clonePolicy(in.Policy)
	out.Subsets = slices.Clone(in.Subsets)
	for i := range out.Subsets {
		out.Subsets[i].Labels = maps.Clone(out.Subsets[i].Labels)
		out.Subsets[i].Endpoints = cloneEndpoints(out.Subsets[i].Endpoints)
		out.Subsets[i].Policy = clonePolicy(out.Subsets[i].Policy)
	}
	return out
}

func cloneHeaderOps(h HeaderOps) HeaderOps {
	return HeaderOps{Set: maps.Clone(h.Set), Add: maps.Clone(h.Add), Remove: slices.Clone(h.Remove)}
}

func cloneRoute(in *Route) Route {
	out := *in
	out.Matches = slices.Clone(in.Matches)
	for i := range out.Matches {
		out.Matches[i].Headers = slices.Clone(out.Matches[i].Headers)
		out.Matches[i].SourceLabels = maps.Clone(out.Matches[i].SourceLabels)
	}
	out.Destinations = slices.Clone(in.Destinations)
	for i := range out.Destinations {
		out.Destinations[i].RequestHeaders = cloneHeaderOps(out.Destinations[i].RequestHeaders)
	}
	p := &out.Policy
	if p.Retry != nil {
		r := *p.Retry
		r.On.HTTPStatuses = slices.Clone(r.On.HTTPStatuses)
		p.Retry = &r
	}
	if p.Fault != nil {
		f := *p.Fault
		if f.Delay != nil {
			d := *f.Delay
			f.Delay = &d
		}
		if f.Abort != nil {
			a := *f.Abort
			f.Abort = &a
		}
		p.Fault = &f
	}
	p.Mirrors = slices.Clone(p.Mirrors)
	p.RequestHeaders = cloneHeaderOps(p.RequestHeaders)
	return out
}

func normalizeName(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
}
