package xdsmesh_test

import (
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// FuzzTranslateBytes feeds arbitrary bytes as a RouteConfiguration. Whatever
// xdsresource accepts must translate into a spec the mesh model accepts, or
// be refused by Translate with an error; nothing may panic.
func FuzzTranslateBytes(f *testing.F) {
	c1, c2 := xdstest.ClusterName(host, "v1", port), xdstest.ClusterName(host, "v2", port)
	seeds := []proto.Message{
		xdstest.RouteConfig(host, port),
		xdstest.RouteConfig(host, port,
			xdstest.WithFault(xdstest.WithTimeout(xdstest.WeightedRoute("split", xdstest.HeaderMatch("/greet.", map[string]string{"x": "y"}),
				xdstest.WeightedCluster{Name: c1, Weight: 80}, xdstest.WeightedCluster{Name: c2, Weight: 20}), time.Second),
				time.Millisecond, 10, 14, 5)),
	}
	edited := xdstest.WeightedRoute("headers", nil, xdstest.WeightedCluster{Name: c1, Weight: 80}, xdstest.WeightedCluster{Name: c2, Weight: 20})
	edited.RequestHeadersToAdd = []*corev3.HeaderValueOption{set("x-env", "prod"), add("x-tenant", "blue")}
	edited.RequestHeadersToRemove = []string{"x-debug"}
	edited.GetRoute().GetWeightedClusters().GetClusters()[1].RequestHeadersToAdd = []*corev3.HeaderValueOption{set("x-canary", "1")}
	seeds = append(seeds, xdstest.RouteConfig(host, port, edited))
	for _, m := range seeds {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	clusters := map[string]*xdsresource.Cluster{}
	for _, n := range []string{c1, c2, xdstest.ClusterName(host, "", port)} {
		clusters[n] = &xdsresource.Cluster{Name: n, EDSServiceName: n, MaxRequests: 1024}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, r, err := xdsresource.Unmarshal(xdsresource.RouteConfigType, &anypb.Any{TypeUrl: xdsresource.RouteConfigURL, Value: b})
		if err != nil {
			return
		}
		spec, err := xdsmesh.Translate(xdsmesh.Input{Target: target, Routes: r.(*xdsresource.RouteConfig), Clusters: clusters})
		if err != nil {
			return
		}
		if _, err := mesh.NewSnapshot(spec); err != nil {
			t.Fatalf("Translate produced a spec the mesh model rejects: %v", err)
		}
	})
}

// FuzzTranslateFields builds routes from fuzzed field values (paths,
// regular expressions, header matchers, weights, percentages, status codes,
// timeouts, retry conditions), which reaches far more of Translate than raw
// bytes do. Same property: accepted by xdsresource means translated into a
// valid mesh spec, or refused with an error.
func FuzzTranslateFields(f *testing.F) {
	f.Add("/greet.", false, "x-user", "alice", uint8(0), uint32(80), uint32(20), uint32(10), uint32(14), uint32(50), int64(100), "unavailable,5xx", uint32(2), true)
	f.Add("/a.*", true, "x", "", uint8(3), uint32(0), uint32(0), uint32(200), uint32(0), uint32(0), int64(-1), "bogus", uint32(0), false)
	c1, c2 := xdstest.ClusterName(host, "v1", port), xdstest.ClusterName(host, "v2", port)
	clusters := map[string]*xdsresource.Cluster{
		c1: {Name: c1, EDSServiceName: c1, MaxRequests: 1024},
		c2: {Name: c2, EDSServiceName: c2, MaxRequests: 1024},
	}
	f.Fuzz(func(t *testing.T, path string, regex bool, header, value string, kind uint8, w1, w2, delayPct, code, abortPct uint32,
		timeoutMs int64, retryOn string, attempts uint32, caseSensitive bool,
	) {
		match := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: path}, CaseSensitive: wrapperspb.Bool(caseSensitive)}
		if regex {
			match.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: path}}
		}
		hm := &routev3.HeaderMatcher{Name: header, InvertMatch: kind&8 != 0}
		sm := &matcherv3.StringMatcher{IgnoreCase: kind&16 != 0}
		switch kind % 6 {
		case 0:
			sm.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: value}
		case 1:
			sm.MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: value}
		case 2:
			sm.MatchPattern = &matcherv3.StringMatcher_Suffix{Suffix: value}
		case 3:
			sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: value}}
		case 4:
			sm.MatchPattern = &matcherv3.StringMatcher_Contains{Contains: value}
		}
		if sm.MatchPattern != nil {
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: sm}
		} else {
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: kind&32 != 0}
		}
		match.Headers = []*routev3.HeaderMatcher{hm}
		r := xdstest.WeightedRoute("fuzz", match, xdstest.WeightedCluster{Name: c1, Weight: w1}, xdstest.WeightedCluster{Name: c2, Weight: w2})
		r.GetRoute().Timeout = durationpb.New(time.Duration(timeoutMs) * time.Millisecond)
		r.GetRoute().RetryPolicy = xdstest.RetryPolicy(retryOn, attempts, 0)
		xdstest.WithFault(r, time.Duration(delayPct)*time.Millisecond, delayPct%101, code, abortPct%101)
		rc := xdstest.RouteConfig(host, port, r)
		b, err := proto.Marshal(rc)
		if err != nil {
			return // invalid UTF-8 in a string field
		}
		_, res, err := xdsresource.Unmarshal(xdsresource.RouteConfigType, &anypb.Any{TypeUrl: xdsresource.RouteConfigURL, Value: b})
		if err != nil {
			return
		}
		spec, err := xdsmesh.Translate(xdsmesh.Input{Target: target, Routes: res.(*xdsresource.RouteConfig), Clusters: clusters})
		if err != nil {
			return
		}
		if _, err := mesh.NewSnapshot(spec); err != nil {
			t.Fatalf("Translate produced a spec the mesh model rejects: %v", err)
		}
	})
}
