package xdsmesh

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// SubsetLabel is set on every subset Translate emits, as its only label:
// xDS sends each subset's endpoints as a cluster of its own, so the subset
// lists its endpoints and must not select the service's other endpoints by
// labels (an empty label set would select them all).
const SubsetLabel = "xds.shoal.io/subset"

// Input is everything istiod sent for one target.
type Input struct {
	// Target is the `host:port` the consumer asked for.
	Target string
	// Service names the target's own clusters in the mesh model: the
	// watched service. Discovery sets the key's interface name, so that
	// calls for that interface find it; empty means Target.
	Service string
	// Revision identifies the combined state; it becomes the snapshot's.
	Revision string
	// Routes is the target's route configuration (from RDS or inline).
	Routes *xdsresource.RouteConfig
	// Clusters are keyed by cluster name. A cluster a route names but
	// missing here (istiod says it does not exist) is left out, so calls
	// routed to it fail with UNAVAILABLE, as with Envoy.
	Clusters map[string]*xdsresource.Cluster
	// Endpoints are keyed by EDS service name; a missing entry means no
	// endpoints yet.
	Endpoints map[string]*xdsresource.Endpoints
}

// ParseClusterName splits istiod's `outbound|port|subset|host` into the mesh
// destination {host:port, subset}. Other names are used as the service name
// as they are.
func ParseClusterName(name string) mesh.Destination {
	parts := strings.Split(name, "|")
	if len(parts) == 4 && parts[0] == "outbound" && parts[3] != "" {
		if _, err := strconv.ParseUint(parts[1], 10, 16); err == nil {
			return mesh.Destination{Service: net.JoinHostPort(parts[3], parts[1]), Subset: parts[2]}
		}
	}
	return mesh.Destination{Service: name}
}

// DefaultCluster is istiod's name for the cluster of all of target's
// endpoints: outbound|port||host.
func DefaultCluster(target string) string {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return ""
	}
	return "outbound|" + port + "||" + host
}

// VirtualHostFor picks the virtual host serving target (host:port): an
// exact domain (host:port, then host) first, then the longest wildcard
// suffix or prefix, then "*", as Envoy does.
func VirtualHostFor(rc *xdsresource.RouteConfig, target string) (*xdsresource.VirtualHost, error) {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	var best *xdsresource.VirtualHost
	bestScore := -1
	for i := range rc.VirtualHosts {
		vh := &rc.VirtualHosts[i]
		for _, d := range vh.Domains {
			score := domainScore(strings.ToLower(d), strings.ToLower(target), strings.ToLower(host))
			if score > bestScore {
				best, bestScore = vh, score
			}
		}
	}
	if best == nil {
		return nil, fmt.Errorf("route configuration %q has no virtual host for %s", rc.Name, target)
	}
	return best, nil
}

func domainScore(d, target, host string) int {
	switch {
	case d == target:
		return 1 << 20
	case d == host:
		return 1 << 19
	case d == "*":
		return 0
	case strings.HasPrefix(d, "*") && (strings.HasSuffix(target, d[1:]) || strings.HasSuffix(host, d[1:])):
		return 1<<10 + len(d)
	case strings.HasSuffix(d, "*") && (strings.HasPrefix(target, d[:len(d)-1]) || strings.HasPrefix(host, d[:len(d)-1])):
		return 1<<9 + len(d)
	}
	return -1
}

// ReferencedClusters returns the clusters the virtual host's routes send
// to or mirror to, sorted.
func ReferencedClusters(vh *xdsresource.VirtualHost) []string {
	var out []string
	for _, r := range vh.Routes {
		for _, wc := range r.WeightedClusters {
			out = append(out, wc.Name)
		}
		for _, m := range r.Mirrors {
			out = append(out, m.Cluster)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Translate maps one target's xDS state to a mesh spec. It fails when a
// route uses something the neutral model cannot express (the route would
// otherwise be silently changed); the caller keeps its last good snapshot.
func Translate(in Input) (mesh.Spec, error) {
	spec := mesh.Spec{Revision: in.Revision}
	rename := func(d mesh.Destination) mesh.Destination {
		if d.Service == in.Target && in.Service != "" {
			d.Service = in.Service
		}
		return d
	}
	if in.Routes == nil {
		return spec, errors.New("no route configuration")
	}
	vh, err := VirtualHostFor(in.Routes, in.Target)
	if err != nil {
		return spec, err
	}
	// Consistent hashing is a cluster policy in the mesh model and a route
	// policy in xDS: each ring-hash cluster takes the hash key of the first
	// route that sends to it.
	hashOf := map[string]*mesh.ConsistentHash{}
	var errs []error
	for i := range vh.Routes {
		r := &vh.Routes[i]
		if len(r.Match.QueryParameters) > 0 {
			continue // needs a query string, which calls never have
		}
		mr, err := translateRoute(r, rename, headerLevels{config: &in.Routes.RequestHeaders, virtualHost: &vh.RequestHeaders, mostSpecificWins: in.Routes.MostSpecificHeaderMutationsWins})
		if err != nil {
			errs = append(errs, fmt.Errorf("route %d %q: %w", i, r.Name, err))
			continue
		}
		spec.Routes = append(spec.Routes, mr)
		if ch := hashKey(r.HashPolicies); ch != nil {
			for _, wc := range r.WeightedClusters {
				if _, ok := hashOf[wc.Name]; !ok {
					hashOf[wc.Name] = ch
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return spec, err
	}
	services := map[string]*mesh.Service{}
	var order []string
	names := ReferencedClusters(vh)
	if def := DefaultCluster(in.Target); !slices.Contains(names, def) {
		names = append(names, def)
	}
	for _, name := range names {
		c, ok := in.Clusters[name]
		if !ok {
			continue
		}
		d := rename(ParseClusterName(name))
		svc, ok := services[d.Service]
		if !ok {
			svc = &mesh.Service{Name: d.Service}
			services[d.Service] = svc
			order = append(order, d.Service)
		}
		policy := clusterPolicy(c, hashOf[name])
		eps := endpoints(in.Endpoints[c.EDSServiceName], clusterHost(name))
		if d.Subset == "" {
			svc.Policy, svc.Endpoints = policy, eps
			continue
		}
		svc.Subsets = append(svc.Subsets, mesh.Subset{
			Name:      d.Subset,
			Labels:    map[string]string{SubsetLabel: d.Subset},
			Endpoints: eps,
			Policy:    policy,
		})
	}
	for _, n := range order {
		spec.Services = append(spec.Services, *services[n])
	}
	return spec, nil
}

func hashKey(hps []xdsresource.HashPolicy) *mesh.ConsistentHash {
	for _, hp := range hps {
		switch {
		case hp.Header != "":
			return &mesh.ConsistentHash{Source: mesh.HashHeader, Name: hp.Header}
		case hp.SourceIP:
			return &mesh.ConsistentHash{Source: mesh.HashSourceIP}
		}
	}
	return nil
}

func translateRoute(r *xdsresource.Route, rename func(mesh.Destination) mesh.Destination, around headerLevels) (mesh.Route, error) {
	mr := mesh.Route{Name: r.Name}
	if r.Action != xdsresource.ActionRoute {
		return mr, errors.New("only forwarding routes are supported (redirects, direct responses and non-forwarding routes are not)")
	}
	m, err := translateMatch(r.Match)
	if err != nil {
		return mr, err
	}
	mr.Matches = []mesh.RouteMatch{m}
	for _, wc := range r.WeightedClusters {
		mr.Destinations = append(mr.Destinations, mesh.WeightedDestination{Destination: rename(ParseClusterName(wc.Name)), Weight: wc.Weight})
	}
	mr.Policy.Timeout = r.Timeout
	if rp := r.RetryPolicy; rp != nil && rp.NumRetries > 0 {
		on, err := mesh.ParseRetryOn(strings.Join(rp.RetryOn, ","))
		if err != nil {
			return mr, err
		}
		mr.Policy.Retry = &mesh.RetryPolicy{
			Attempts:      rp.NumRetries,
			PerTryTimeout: rp.PerTryTimeout,
			On:            on,
			Backoff:       mesh.Backoff{Base: rp.BaseInterval, Max: rp.MaxInterval},
		}
	}
	if f := r.Fault; f != nil {
		fp := &mesh.FaultPolicy{}
		if f.Delay > 0 && f.DelayPPM > 0 {
			fp.Delay = &mesh.FaultDelay{Fixed: f.Delay, Percentage: percent(f.DelayPPM)}
		}
		if f.AbortGRPCCode != nil || f.AbortHTTPStatus != 0 {
			a := &mesh.FaultAbort{Percentage: percent(f.AbortPPM), HTTPStatus: int(f.AbortHTTPStatus)}
			if f.AbortGRPCCode != nil {
				if *f.AbortGRPCCode == 0 {
					return mr, errors.New("fault abort with gRPC status 0 (OK) cannot be expressed; abort with an error status")
				}
				a.Code = call.Code(*f.AbortGRPCCode)
			} else {
				a.Code = call.CodeForHTTPStatus(int(f.AbortHTTPStatus))
			}
			fp.Abort = a
		}
		if fp.Delay != nil || fp.Abort != nil {
			mr.Policy.Fault = fp
		}
	}
	for _, m := range r.Mirrors {
		mr.Policy.Mirrors = append(mr.Policy.Mirrors, mesh.Mirror{Destination: rename(ParseClusterName(m.Cluster)), Percentage: percent(m.PPM)})
	}
	if err := requestHeaders(&mr, r, around); err != nil {
		return mr, err
	}
	return mr, nil
}

func percent(ppm uint32) float64 { return float64(ppm) / 10_000 }

func translateMatch(m xdsresource.RouteMatch) (mesh.RouteMatch, error) {
	var out mesh.RouteMatch
	if m.FractionPPM != nil && *m.FractionPPM < 1_000_000 {
		return out, errors.New("runtime_fraction matches are not supported by the mesh model")
	}
	switch m.PathKind {
	case xdsresource.PathPrefix:
		if m.Path != "" && m.Path != "/" {
			out.Path = mesh.Prefix(m.Path)
		}
	case xdsresource.PathExact:
		out.Path = mesh.Exact(m.Path)
	case xdsresource.PathRegex:
		re, err := mesh.Regex(m.Path)
		if err != nil {
			return out, err
		}
		out.Path = re
	}
	if !m.CaseSensitive && !out.Path.IsAny() {
		out.Path = out.Path.IgnoringCase()
	}
	for _, h := range m.Headers {
		hm := mesh.HeaderMatch{Name: h.Name, Invert: h.Invert}
		switch h.Kind {
		case xdsresource.MatchExact:
			hm.Value = mesh.Exact(h.Value)
		case xdsresource.MatchPrefix:
			hm.Value = mesh.Prefix(h.Value)
		case xdsresource.MatchSuffix:
			hm.Value = mesh.Suffix(h.Value)
		case xdsresource.MatchContains:
			hm.Value = mesh.Contains(h.Value)
		case xdsresource.MatchRegex:
			re, err := mesh.Regex(h.Value)
			if err != nil {
				return out, err
			}
			hm.Value = re
		case xdsresource.MatchPresent:
			// A presence test; "must be absent" is an inverted presence test.
			hm.Invert = h.Invert == h.Present
		case xdsresource.MatchRange:
			return out, fmt.Errorf("header %q: range matches are not supported by the mesh model", h.Name)
		}
		if h.IgnoreCase && !hm.Value.IsAny() {
			hm.Value = hm.Value.IgnoringCase()
		}
		out.Headers = append(out.Headers, hm)
	}
	return out, nil
}

func clusterPolicy(c *xdsresource.Cluster, hash *mesh.ConsistentHash) mesh.ClusterPolicy {
	lb := &mesh.LoadBalancer{}
	switch c.LBPolicy {
	case xdsresource.LBRoundRobin:
		lb.Kind = mesh.LBRoundRobin
	case xdsresource.LBLeastRequest:
		lb.Kind = mesh.LBLeastRequest
	case xdsresource.LBRandom:
		lb.Kind = mesh.LBRandom
	case xdsresource.LBRingHash, xdsresource.LBMaglev:
		if hash == nil {
			// No route gives a hash key: Envoy then hashes a random
			// number, which is random balancing.
			lb.Kind = mesh.LBRandom
			break
		}
		h := *hash
		if c.LBPolicy == xdsresource.LBRingHash {
			lb.Kind = mesh.LBRingHash
			h.MinRingSize = c.RingHash.MinRingSize
		} else {
			lb.Kind = mesh.LBMaglev
		}
		lb.ConsistentHash = &h
	}
	p := mesh.ClusterPolicy{
		LoadBalancer:   lb,
		ConnectionPool: &mesh.ConnectionPool{MaxRequests: c.MaxRequests, ConnectTimeout: c.ConnectTimeout},
	}
	if od := c.OutlierDetection; od != nil {
		p.OutlierDetection = &mesh.OutlierDetection{
			Consecutive5xxErrors:           od.Consecutive5xx,
			ConsecutiveGatewayErrors:       od.ConsecutiveGatewayFailure,
			ConsecutiveLocalOriginFailures: od.ConsecutiveLocalOriginFailure,
			SplitExternalLocalOriginErrors: od.ConsecutiveLocalOriginFailure > 0,
			Interval:                       od.Interval,
			BaseEjectionTime:               od.BaseEjectionTime,
			MaxEjectionPercent:             od.MaxEjectionPercent,
		}
	}
	return p
}

// clusterHost is the service host of istiod's cluster name
// `outbound|port|subset|host`, "" for other names.
func clusterHost(name string) string {
	parts := strings.Split(name, "|")
	if len(parts) == 4 && parts[0] == "outbound" {
		return parts[3]
	}
	return ""
}

// endpoints flattens localities, keeping each endpoint's locality and
// priority. Locality weights (load_balancing_weight of a locality) have no
// place in the mesh model yet and are dropped. A non-empty host becomes
// each endpoint's mesh.LabelService.
func endpoints(e *xdsresource.Endpoints, host string) []mesh.Endpoint {
	if e == nil {
		return nil
	}
	var out []mesh.Endpoint
	for _, l := range e.Localities {
		for _, ep := range l.Endpoints {
			labels := ep.Labels
			if host != "" {
				labels = maps.Clone(labels) // the resource's map is shared with the xDS cache
				if labels == nil {
					labels = make(map[string]string, 1)
				}
				labels[mesh.LabelService] = host
			}
			out = append(out, mesh.Endpoint{
				Address:  ep.Address,
				Weight:   ep.Weight,
				Labels:   labels,
				Locality: mesh.Locality{Region: l.Locality.Region, Zone: l.Locality.Zone, SubZone: l.Locality.SubZone},
				Health:   mesh.HealthStatus(ep.Health),
				Priority: l.Priority,
			})
		}
	}
	return out
}
