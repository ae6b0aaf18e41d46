package xdsresource

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// Retry defaults, as in Envoy.
const (
	defaultRetryBaseInterval = 25 * time.Millisecond
	defaultNumRetries        = 1
)

func unmarshalRouteConfig(b []byte) (string, *RouteConfig, error) {
	pb := &routev3.RouteConfiguration{}
	if err := decode(b, pb); err != nil {
		return "", nil, err
	}
	if pb.GetName() == "" {
		return "", nil, errNoName
	}
	rc, err := routeConfigFromProto(pb)
	return pb.GetName(), rc, err
}

func routeConfigFromProto(pb *routev3.RouteConfiguration) (*RouteConfig, error) {
	rc := &RouteConfig{Name: pb.GetName(), VirtualHosts: make([]VirtualHost, 0, len(pb.GetVirtualHosts())), MostSpecificHeaderMutationsWins: pb.GetMostSpecificHeaderMutationsWins()}
	hm, err := headerMutationsFromProto(pb.GetRequestHeadersToAdd(), pb.GetRequestHeadersToRemove())
	if err != nil {
		return nil, err
	}
	rc.RequestHeaders = hm
	for i, vpb := range pb.GetVirtualHosts() {
		vh, err := virtualHostFromProto(vpb)
		if err != nil {
			return nil, fmt.Errorf("virtual_hosts[%d] %q: %w", i, vpb.GetName(), err)
		}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	return rc, nil
}

func virtualHostFromProto(pb *routev3.VirtualHost) (VirtualHost, error) {
	vh := VirtualHost{Name: pb.GetName(), Domains: pb.GetDomains()}
	if len(vh.Domains) == 0 {
		return vh, fmt.Errorf("no domains")
	}
	rp, err := retryFromProto(pb.GetRetryPolicy())
	if err != nil {
		return vh, fmt.Errorf("retry_policy: %w", err)
	}
	vh.RetryPolicy = rp
	if vh.RequestHeaders, err = headerMutationsFromProto(pb.GetRequestHeadersToAdd(), pb.GetRequestHeadersToRemove()); err != nil {
		return vh, err
	}
	vhFault, err := faultFromFilterConfigs(pb.GetTypedPerFilterConfig())
	if err != nil {
		return vh, err
	}
	vh.Routes = make([]Route, 0, len(pb.GetRoutes()))
	for i, rpb := range pb.GetRoutes() {
		r, err := routeFromProto(rpb)
		if err != nil {
			return vh, fmt.Errorf("routes[%d] %q: %w", i, rpb.GetName(), err)
		}
		if r.Fault == nil {
			r.Fault = vhFault
		}
		vh.Routes = append(vh.Routes, r)
	}
	return vh, nil
}

func routeFromProto(pb *routev3.Route) (Route, error) {
	r := Route{Name: pb.GetName()}
	m, err := matchFromProto(pb.GetMatch())
	if err != nil {
		return r, err
	}
	r.Match = m
	fault, err := faultFromFilterConfigs(pb.GetTypedPerFilterConfig())
	if err != nil {
		return r, err
	}
	r.Fault = fault
	if r.RequestHeaders, err = headerMutationsFromProto(pb.GetRequestHeadersToAdd(), pb.GetRequestHeadersToRemove()); err != nil {
		return r, err
	}
	switch a := pb.GetAction().(type) {
	case *routev3.Route_Route:
		if err := routeActionFromProto(a.Route, &r); err != nil {
			return r, err
		}
	case *routev3.Route_NonForwardingAction:
		r.Action = ActionNonForwarding
	case *routev3.Route_Redirect, *routev3.Route_DirectResponse, *routev3.Route_FilterAction:
		r.Action = ActionUnsupported
	default:
		return r, fmt.Errorf("no action")
	}
	return r, nil
}

func matchFromProto(pb *routev3.RouteMatch) (RouteMatch, error) {
	m := RouteMatch{CaseSensitive: true}
	if pb == nil {
		return m, fmt.Errorf("no match")
	}
	if cs := pb.GetCaseSensitive(); cs != nil {
		m.CaseSensitive = cs.GetValue()
	}
	switch ps := pb.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		m.PathKind, m.Path = PathPrefix, ps.Prefix
	case *routev3.RouteMatch_Path:
		m.PathKind, m.Path = PathExact, ps.Path
	case *routev3.RouteMatch_SafeRegex:
		re, err := compileRegex("match.safe_regex", ps.SafeRegex.GetRegex(), !m.CaseSensitive)
		if err != nil {
			return m, err
		}
		m.PathKind, m.Path, m.PathRegex = PathRegex, ps.SafeRegex.GetRegex(), re
	case nil:
		return m, fmt.Errorf("match has no path specifier (prefix, path or safe_regex)")
	default:
		return m, fmt.Errorf("match path specifier %T is not supported (use prefix, path or safe_regex)", ps)
	}
	for i, h := range pb.GetHeaders() {
		hm, err := headerMatchFromProto(h)
		if err != nil {
			return m, fmt.Errorf("match.headers[%d] %q: %w", i, h.GetName(), err)
		}
		m.Headers = append(m.Headers, hm)
	}
	if f := pb.GetRuntimeFraction().GetDefaultValue(); f != nil {
		v := ppm(f)
		m.FractionPPM = &v
	}
	for _, q := range pb.GetQueryParameters() {
		m.QueryParameters = append(m.QueryParameters, q.GetName())
	}
	return m, nil
}

func compileRegex(field, expr string, ignoreCase bool) (*regexp.Regexp, error) {
	// RE2 semantics; xDS regexes match the whole input.
	src := "^(?:" + expr + ")$"
	if ignoreCase {
		src = "(?i)" + src
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("%s %q does not compile: %w", field, expr, err)
	}
	return re, nil
}

func headerMatchFromProto(pb *routev3.HeaderMatcher) (HeaderMatch, error) {
	h := HeaderMatch{Name: strings.ToLower(pb.GetName()), Invert: pb.GetInvertMatch()}
	if h.Name == "" {
		return h, fmt.Errorf("no header name")
	}
	// The deprecated specifiers are still read: older istiod versions send
	// them. Newer ones send string_match.
	//nolint:staticcheck // see above
	switch s := pb.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_ExactMatch:
		h.Kind, h.Value = MatchExact, s.ExactMatch
	case *routev3.HeaderMatcher_PrefixMatch:
		h.Kind, h.Value = MatchPrefix, s.PrefixMatch
	case *routev3.HeaderMatcher_SuffixMatch:
		h.Kind, h.Value = MatchSuffix, s.SuffixMatch
	case *routev3.HeaderMatcher_ContainsMatch:
		h.Kind, h.Value = MatchContains, s.ContainsMatch
	case *routev3.HeaderMatcher_SafeRegexMatch:
		re, err := compileRegex("safe_regex_match", s.SafeRegexMatch.GetRegex(), false)
		if err != nil {
			return h, err
		}
		h.Kind, h.Value, h.Regex = MatchRegex, s.SafeRegexMatch.GetRegex(), re
	case *routev3.HeaderMatcher_PresentMatch:
		h.Kind, h.Present = MatchPresent, s.PresentMatch
	case *routev3.HeaderMatcher_RangeMatch:
		if s.RangeMatch.GetStart() >= s.RangeMatch.GetEnd() {
			return h, fmt.Errorf("range_match start %d is not below end %d", s.RangeMatch.GetStart(), s.RangeMatch.GetEnd())
		}
		h.Kind, h.RangeStart, h.RangeEnd = MatchRange, s.RangeMatch.GetStart(), s.RangeMatch.GetEnd()
	case *routev3.HeaderMatcher_StringMatch:
		return stringMatchFromProto(h, s.StringMatch)
	case nil:
		// No specifier: Envoy treats this as a presence match.
		h.Kind, h.Present = MatchPresent, true
	default:
		return h, fmt.Errorf("header matcher %T is not supported", s)
	}
	return h, nil
}

func stringMatchFromProto(h HeaderMatch, sm *matcherv3.StringMatcher) (HeaderMatch, error) {
	h.IgnoreCase = sm.GetIgnoreCase()
	switch p := sm.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		h.Kind, h.Value = MatchExact, p.Exact
	case *matcherv3.StringMatcher_Prefix:
		h.Kind, h.Value = MatchPrefix, p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		h.Kind, h.Value = MatchSuffix, p.Suffix
	case *matcherv3.StringMatcher_Contains:
		h.Kind, h.Value = MatchContains, p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := compileRegex("string_match.safe_regex", p.SafeRegex.GetRegex(), false)
		if err != nil {
			return h, err
		}
		h.Kind, h.Value, h.Regex = MatchRegex, p.SafeRegex.GetRegex(), re
	default:
		return h, fmt.Errorf("string_match pattern %T is not supported", p)
	}
	return h, nil
}

func routeActionFromProto(pb *routev3.RouteAction, r *Route) error {
	r.Action = ActionRoute
	switch cs := pb.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		if cs.Cluster == "" {
			return fmt.Errorf("route.cluster is empty")
		}
		r.WeightedClusters = []WeightedCluster{{Name: cs.Cluster, Weight: 1}}
		r.TotalWeight = 1
	case *routev3.RouteAction_WeightedClusters:
		for i, c := range cs.WeightedClusters.GetClusters() {
			if c.GetName() == "" {
				return fmt.Errorf("route.weighted_clusters.clusters[%d] has no name", i)
			}
			w := c.GetWeight().GetValue()
			if w == 0 {
				continue
			}
			total, err := checkedAdd(r.TotalWeight, w)
			if err != nil {
				return fmt.Errorf("route.weighted_clusters: %w", err)
			}
			r.TotalWeight = total
			hm, err := headerMutationsFromProto(c.GetRequestHeadersToAdd(), c.GetRequestHeadersToRemove())
			if err != nil {
				return fmt.Errorf("route.weighted_clusters.clusters[%d] %q: %w", i, c.GetName(), err)
			}
			r.WeightedClusters = append(r.WeightedClusters, WeightedCluster{Name: c.GetName(), Weight: w, RequestHeaders: hm})
		}
		if r.TotalWeight == 0 {
			return fmt.Errorf("route.weighted_clusters: total weight is 0; give at least one cluster a positive weight")
		}
	case nil:
		return fmt.Errorf("route action has no cluster specifier")
	default:
		return fmt.Errorf("route cluster specifier %T is not supported (use cluster or weighted_clusters)", cs)
	}
	// gRPC clients honour max_stream_duration; Envoy's timeout is the
	// fallback, as both are set by istiod from the VirtualService timeout.
	var err error
	if msd := pb.GetMaxStreamDuration(); msd.GetMaxStreamDuration() != nil {
		r.Timeout, err = duration("route.max_stream_duration.max_stream_duration", msd.GetMaxStreamDuration())
	} else {
		r.Timeout, err = duration("route.timeout", pb.GetTimeout())
	}
	if err != nil {
		return err
	}
	if r.RetryPolicy, err = retryFromProto(pb.GetRetryPolicy()); err != nil {
		return fmt.Errorf("route.retry_policy: %w", err)
	}
	for i, hp := range pb.GetHashPolicy() {
		switch p := hp.GetPolicySpecifier().(type) {
		case *routev3.RouteAction_HashPolicy_Header_:
			if p.Header.GetHeaderName() == "" {
				return fmt.Errorf("route.hash_policy[%d].header has no header_name", i)
			}
			r.HashPolicies = append(r.HashPolicies, HashPolicy{Header: strings.ToLower(p.Header.GetHeaderName()), Terminal: hp.GetTerminal()})
		case *routev3.RouteAction_HashPolicy_FilterState_:
			if p.FilterState.GetKey() == channelIDStateKey {
				r.HashPolicies = append(r.HashPolicies, HashPolicy{ChannelID: true, Terminal: hp.GetTerminal()})
			}
		case *routev3.RouteAction_HashPolicy_ConnectionProperties_:
			if p.ConnectionProperties.GetSourceIp() {
				r.HashPolicies = append(r.HashPolicies, HashPolicy{SourceIP: true, Terminal: hp.GetTerminal()})
			}
		default:
			// Cookies and query parameters have no meaning for gRPC or
			// Triple calls: skipped, like grpc-go does.
		}
	}
	for i, mp := range pb.GetRequestMirrorPolicies() {
		if mp.GetCluster() == "" {
			return fmt.Errorf("route.request_mirror_policies[%d] has no cluster", i)
		}
		share := uint32(1_000_000)
		if f := mp.GetRuntimeFraction().GetDefaultValue(); f != nil {
			share = ppm(f)
		}
		r.Mirrors = append(r.Mirrors, MirrorPolicy{Cluster: mp.GetCluster(), PPM: share})
	}
	return nil
}

func retryFromProto(pb *routev3.RetryPolicy) (*RetryPolicy, error) {
	if pb == nil {
		return nil, nil
	}
	rp := &RetryPolicy{NumRetries: defaultNumRetries, BaseInterval: defaultRetryBaseInterval}
	for _, c := range strings.Split(pb.GetRetryOn(), ",") {
		if c = strings.TrimSpace(c); c != "" {
			rp.RetryOn = append(rp.RetryOn, c)
		}
	}
	if n := pb.GetNumRetries(); n != nil {
		rp.NumRetries = n.GetValue()
	}
	var err error
	if rp.PerTryTimeout, err = duration("per_try_timeout", pb.GetPerTryTimeout()); err != nil {
		return nil, err
	}
	if bo := pb.GetRetryBackOff(); bo != nil {
		if bo.GetBaseInterval() == nil {
			return nil, fmt.Errorf("retry_back_off.base_interval is required")
		}
		if rp.BaseInterval, err = duration("retry_back_off.base_interval", bo.GetBaseInterval()); err != nil {
			return nil, err
		}
		if rp.BaseInterval == 0 {
			return nil, fmt.Errorf("retry_back_off.base_interval must be above 0")
		}
		if rp.MaxInterval, err = duration("retry_back_off.max_interval", bo.GetMaxInterval()); err != nil {
			return nil, err
		}
	}
	if rp.MaxInterval == 0 {
		rp.MaxInterval = 10 * rp.BaseInterval
	}
	if rp.MaxInterval < rp.BaseInterval {
		return nil, fmt.Errorf("retry_back_off.max_interval %v is below base_interval %v", rp.MaxInterval, rp.BaseInterval)
	}
	return rp, nil
}

// faultFromFilterConfigs reads the fault filter's per-route override.
func faultFromFilterConfigs(cfgs map[string]*anypb.Any) (*FaultPolicy, error) {
	a, ok := cfgs[faultFilterName]
	if !ok {
		return nil, nil
	}
	if a.GetTypeUrl() == filterConfigURL {
		fc := &routev3.FilterConfig{}
		if err := decode(a.GetValue(), fc); err != nil {
			return nil, fmt.Errorf("typed_per_filter_config[%s]: %w", faultFilterName, err)
		}
		a = fc.GetConfig()
	}
	if a.GetTypeUrl() != faultURL {
		return nil, fmt.Errorf("typed_per_filter_config[%s] has type %q, want %q", faultFilterName, a.GetTypeUrl(), faultURL)
	}
	pb := &faultv3.HTTPFault{}
	if err := decode(a.GetValue(), pb); err != nil {
		return nil, fmt.Errorf("typed_per_filter_config[%s]: %w", faultFilterName, err)
	}
	f := &FaultPolicy{}
	if d := pb.GetDelay(); d != nil {
		if d.GetFixedDelay() == nil {
			return nil, fmt.Errorf("fault delay: only fixed_delay is supported")
		}
		v, err := duration("fault.delay.fixed_delay", d.GetFixedDelay())
		if err != nil {
			return nil, err
		}
		f.Delay, f.DelayPPM = v, ppm(d.GetPercentage())
	}
	if ab := pb.GetAbort(); ab != nil {
		switch e := ab.GetErrorType().(type) {
		case *faultv3.FaultAbort_GrpcStatus:
			if e.GrpcStatus > 16 {
				return nil, fmt.Errorf("fault.abort.grpc_status %d is not a gRPC status code (0-16)", e.GrpcStatus)
			}
			c := e.GrpcStatus
			f.AbortGRPCCode = &c
		case *faultv3.FaultAbort_HttpStatus:
			if e.HttpStatus < 200 || e.HttpStatus > 599 {
				return nil, fmt.Errorf("fault.abort.http_status %d is outside 200-599", e.HttpStatus)
			}
			f.AbortHTTPStatus = e.HttpStatus
		default:
			return nil, fmt.Errorf("fault.abort: only grpc_status and http_status are supported")
		}
		f.AbortPPM = ppm(ab.GetPercentage())
	}
	return f, nil
}
