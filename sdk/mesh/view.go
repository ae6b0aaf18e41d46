package mesh

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// View is a snapshot in a plain form for people and tools: what a
// consumer routes by, in order, with every field a string, number or list,
// so that it survives JSON (or YAML) and reads the same wherever it was
// made. `shoal show` prints it from istiod's answer, an application's
// admin endpoint serves the view of each of its references, and the two
// compare field by field. It leaves out what only the router's
// implementation needs (compiled matchers, header rewrites).
type View struct {
	Revision string        `json:"revision,omitempty"`
	Routes   []RouteView   `json:"routes"`
	Services []ServiceView `json:"services"`
}

// RouteView is a route: its matches as text (any one matching selects the
// route; none means every call), weighted destinations and policy.
type RouteView struct {
	Name         string            `json:"name,omitempty"`
	Matches      []string          `json:"matches"`
	Destinations []DestinationView `json:"destinations"`
	Timeout      string            `json:"timeout,omitempty"`
	Retry        *RetryView        `json:"retry,omitempty"`
	Fault        *FaultView        `json:"fault,omitempty"`
	Mirrors      []string          `json:"mirrors,omitempty"`
}

// DestinationView is a weighted destination and its share of the route.
type DestinationView struct {
	Service string  `json:"service"`
	Subset  string  `json:"subset,omitempty"`
	Weight  uint32  `json:"weight"`
	Percent float64 `json:"percent"`
}

// RetryView is a route's retry policy.
type RetryView struct {
	Attempts      uint32 `json:"attempts"`
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	On            string `json:"on,omitempty"`
}

// FaultView is a route's injected faults.
type FaultView struct {
	Delay        string  `json:"delay,omitempty"`
	DelayPercent float64 `json:"delayPercent,omitempty"`
	Abort        string  `json:"abort,omitempty"`
	AbortPercent float64 `json:"abortPercent,omitempty"`
}

// ServiceView is a service: its policy, subsets and endpoints.
type ServiceView struct {
	Name         string         `json:"name"`
	LoadBalancer string         `json:"loadBalancer,omitempty"`
	TLS          string         `json:"tls,omitempty"`
	MaxRequests  uint32         `json:"maxRequests,omitempty"`
	Outlier      bool           `json:"outlierDetection,omitempty"`
	Subsets      []SubsetView   `json:"subsets"`
	Endpoints    []EndpointView `json:"endpoints"`
}

// SubsetView is a subset and the endpoints it selects.
type SubsetView struct {
	Name      string         `json:"name"`
	Endpoints []EndpointView `json:"endpoints"`
}

// EndpointView is an endpoint with its health.
type EndpointView struct {
	Address string `json:"address"`
	Health  string `json:"health"`
	// Ready says whether the router calls the endpoint (unknown, healthy
	// and degraded ones).
	Ready    bool              `json:"ready"`
	Weight   uint32            `json:"weight,omitempty"`
	Locality string            `json:"locality,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// NewView returns the view of s; nil gives an empty view. It reads s and
// builds new values, so it is for debugging pages, not for the call path.
func NewView(s *Snapshot) *View {
	v := &View{Routes: []RouteView{}, Services: []ServiceView{}}
	if s == nil {
		return v
	}
	v.Revision = s.Revision()
	for i := range s.routes {
		v.Routes = append(v.Routes, newRouteView(&s.routes[i]))
	}
	for i := range s.services {
		svc := &s.services[i]
		sv := ServiceView{Name: svc.Name, Subsets: []SubsetView{}, Endpoints: endpointViews(pointers(svc.Endpoints))}
		p := svc.Policy
		if lb := p.LoadBalancer; lb != nil {
			sv.LoadBalancer = lb.Kind.String()
		}
		if p.TLS != nil {
			sv.TLS = p.TLS.Mode.String()
		}
		if p.ConnectionPool != nil {
			sv.MaxRequests = p.ConnectionPool.MaxRequests
		}
		sv.Outlier = p.OutlierDetection != nil
		for _, sub := range svc.Subsets {
			var eps []*Endpoint
			if c, ok := s.clusters[Destination{Service: svc.Name, Subset: sub.Name}]; ok {
				eps = c.Endpoints()
			}
			sv.Subsets = append(sv.Subsets, SubsetView{Name: sub.Name, Endpoints: endpointViews(eps)})
		}
		v.Services = append(v.Services, sv)
	}
	return v
}

func newRouteView(r *Route) RouteView {
	rv := RouteView{Name: r.Name, Matches: []string{}, Destinations: []DestinationView{}}
	for i := range r.Matches {
		rv.Matches = append(rv.Matches, r.Matches[i].text())
	}
	total := r.TotalWeight()
	for _, d := range r.Destinations {
		pct := 0.0
		if total > 0 {
			pct = float64(d.Weight) * 100 / float64(total)
		}
		rv.Destinations = append(rv.Destinations, DestinationView{Service: d.Service, Subset: d.Subset, Weight: d.Weight, Percent: pct})
	}
	p := r.Policy
	if p.Timeout > 0 {
		rv.Timeout = p.Timeout.String()
	}
	if p.Retry != nil {
		rv.Retry = &RetryView{Attempts: p.Retry.Attempts, On: p.Retry.On.String()}
		if p.Retry.PerTryTimeout > 0 {
			rv.Retry.PerTryTimeout = p.Retry.PerTryTimeout.String()
		}
	}
	if fp := p.Fault; fp != nil {
		rv.Fault = &FaultView{}
		if fp.Delay != nil {
			rv.Fault.Delay, rv.Fault.DelayPercent = fp.Delay.Fixed.String(), fp.Delay.Percentage
		}
		if fp.Abort != nil {
			rv.Fault.Abort = fp.Abort.Code.String()
			if fp.Abort.HTTPStatus != 0 {
				rv.Fault.Abort = fmt.Sprintf("HTTP %d", fp.Abort.HTTPStatus)
			}
			rv.Fault.AbortPercent = fp.Abort.Percentage
		}
	}
	for _, m := range p.Mirrors {
		rv.Mirrors = append(rv.Mirrors, fmt.Sprintf("%s %g%%", m.Destination, m.Percentage))
	}
	return rv
}

// text writes the match as `path prefix "/x", header k exact "v"`, or
// "any".
func (m *RouteMatch) text() string {
	var parts []string
	if !m.Path.IsAny() {
		parts = append(parts, "path "+m.Path.text())
	}
	for _, h := range m.Headers {
		not := ""
		if h.Invert {
			not = "not "
		}
		parts = append(parts, "header "+h.Name+" "+not+h.Value.text())
	}
	for _, k := range slices.Sorted(maps.Keys(m.SourceLabels)) {
		parts = append(parts, "source "+k+"="+m.SourceLabels[k])
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, ", ")
}

func (m StringMatch) text() string {
	if m.IsAny() {
		return "present"
	}
	t := fmt.Sprintf("%s %q", m.kind, m.value)
	if m.ignoreCase {
		t += " (ignoring case)"
	}
	return t
}

func endpointViews(eps []*Endpoint) []EndpointView {
	out := make([]EndpointView, 0, len(eps))
	for _, ep := range eps {
		ev := EndpointView{Address: ep.Address, Health: ep.Health.String(), Ready: ep.Ready(), Weight: ep.Weight}
		if l := ep.Locality; l != (Locality{}) {
			ev.Locality = l.String()
		}
		if len(ep.Labels) > 0 {
			ev.Labels = maps.Clone(ep.Labels)
		}
		out = append(out, ev)
	}
	return out
}
