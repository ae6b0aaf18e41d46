package mesh

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/sdk/call"
)

// TestIndexedMatchAgreesWithPerMatcherLookup checks the per-call header
// table against evaluating every route with Applies, over many calls.
func TestIndexedMatchAgreesWithPerMatcherLookup(t *testing.T) {
	hm := func(name string, v StringMatch, invert bool) HeaderMatch {
		return HeaderMatch{Name: name, Value: v, Invert: invert}
	}
	dest := []WeightedDestination{{Destination: Destination{Service: "s"}}}
	spec := Spec{
		Services: []Service{{Name: "s", Endpoints: []Endpoint{{Address: "10.0.0.1:1"}}}},
		Routes: []Route{
			{Name: "a", Matches: []RouteMatch{{Headers: []HeaderMatch{hm("X-User", Prefix("u-"), false), hm("x-tenant", Exact("blue"), false)}}}, Destinations: dest},
			{Name: "b", Matches: []RouteMatch{{Headers: []HeaderMatch{hm("x-canary", StringMatch{}, false)}}, {Path: Exact("/s/B")}}, Destinations: dest},
			{Name: "c", Matches: []RouteMatch{{Headers: []HeaderMatch{hm("x-tenant", Exact("red"), true)}}}, Destinations: dest},
			{Name: "d", Destinations: dest},
		},
	}
	snap, err := NewSnapshot(spec)
	if err != nil {
		t.Fatal(err)
	}
	values := []string{"", "u-1", "blue", "red", "x"}
	paths := []string{"/s/A", "/s/B"}
	n := 0
	for _, p := range paths {
		for _, user := range values {
			for _, tenant := range values {
				for _, canary := range values[:2] {
					a := call.Attachments{}
					for k, v := range map[string]string{"x-user": user, "x-tenant": tenant, "x-canary": canary} {
						if v != "" {
							a[k] = v
						}
					}
					var want *Route
					for i := range snap.routes {
						if snap.routes[i].Applies(p, a, nil) {
							want = &snap.routes[i]
							break
						}
					}
					if got := snap.Match(p, a, nil); got != want {
						t.Errorf("path %s attachments %v: Match = %v, per-matcher = %v", p, a, name(got), name(want))
					}
					n++
				}
			}
		}
	}
	if n != 100 {
		t.Fatalf("checked %d calls", n)
	}
}

func name(r *Route) string {
	if r == nil {
		return "<nil>"
	}
	return r.Name
}

// TestTableAgreesWithApplies compares the compiled route table with
// evaluating each route's Applies in order, on random route sets and random
// calls. The sets reach past the table's limits: more than memoConds
// distinct conditions and more than headerSlots distinct headers.
func TestTableAgreesWithApplies(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	names := make([]string, 24)
	for i := range names {
		names[i] = fmt.Sprintf("x-h%d", i)
	}
	names[0] = "X-Mixed-Case" // matched case-insensitively, stored lower-case
	values := []string{"a", "ab", "b", "B"}
	matcher := func() StringMatch {
		v := values[rnd.IntN(len(values))]
		var m StringMatch
		switch rnd.IntN(7) {
		case 0:
			m = StringMatch{}
		case 1:
			m = Exact(v)
		case 2:
			m = Prefix(v[:1])
		case 3:
			m = Suffix(v[len(v)-1:])
		case 4:
			m = Contains(v[:1])
		case 5:
			m = MustRegex("a[ab]*")
		default:
			m = Exact(v)
		}
		if rnd.IntN(5) == 0 {
			m = m.IgnoringCase()
		}
		return m
	}
	paths := []string{"/s/A", "/s/B", "/S/a", "/t/A"}
	pathMatchers := []StringMatch{{}, Exact("/s/A"), Prefix("/s/"), Suffix("/A"), Prefix("/s/").IgnoringCase(), MustRegex("/[st]/[AB]")}
	dest := []WeightedDestination{{Destination: Destination{Service: "s"}}}
	source := map[string]string{"app": "web", "version": "v1"}
	var sawManyConds, sawManyHeaders bool
	for round := range 300 {
		nHeaders := 3 + rnd.IntN(len(names)-2)
		// Routes draw their header matches from a pool, so that conditions
		// repeat across routes as they do in real VirtualServices.
		pool := make([]HeaderMatch, 10+rnd.IntN(110))
		for i := range pool {
			pool[i] = HeaderMatch{Name: names[rnd.IntN(nHeaders)], Value: matcher(), Invert: rnd.IntN(4) == 0}
		}
		var routes []Route
		for r := range 1 + rnd.IntN(60) {
			rt := Route{Name: fmt.Sprint(r), Destinations: dest}
			// A route without matches, or a match without conditions,
			// takes every call: keep them rare so later routes are reached.
			nMatches := 1 + rnd.IntN(2)
			if rnd.IntN(50) == 0 {
				nMatches = 0
			}
			for range nMatches {
				m := RouteMatch{Path: pathMatchers[rnd.IntN(len(pathMatchers))]}
				for range 1 + rnd.IntN(3) {
					m.Headers = append(m.Headers, pool[rnd.IntN(len(pool))])
				}
				if rnd.IntN(8) == 0 {
					m.SourceLabels = map[string]string{"app": []string{"web", "db"}[rnd.IntN(2)]}
				}
				rt.Matches = append(rt.Matches, m)
			}
			routes = append(routes, rt)
		}
		snap, err := NewSnapshot(Spec{Services: []Service{{Name: "s", Endpoints: []Endpoint{{Address: "10.0.0.1:1"}}}}, Routes: routes})
		if err != nil {
			t.Fatal(err)
		}
		sawManyConds = sawManyConds || len(snap.table.conds) > memoConds
		sawManyHeaders = sawManyHeaders || len(snap.table.headers) > headerSlots
		for range 300 {
			a := call.Attachments{}
			for _, n := range names[:nHeaders] {
				if rnd.IntN(5) != 0 {
					a[strings.ToLower(n)] = values[rnd.IntN(len(values))]
				}
			}
			p := paths[rnd.IntN(len(paths))]
			src := source
			if rnd.IntN(2) == 0 {
				src = nil
			}
			want := -1
			for i := range snap.routes {
				if snap.routes[i].Applies(p, a, src) {
					want = i
					break
				}
			}
			if got := snap.MatchIndex(p, a, src); got != want {
				t.Fatalf("round %d: path %s attachments %v source %v: MatchIndex = %d, Applies says %d", round, p, a, src, got, want)
			}
		}
	}
	if !sawManyConds || !sawManyHeaders {
		t.Errorf("the random route sets never exceeded the table's limits (conditions %v, headers %v)", sawManyConds, sawManyHeaders)
	}
}

// TestTableReusesEveryCondition has each of 80 conditions (more than the
// table remembers per call) hold in a route that then fails on another
// header, and decide a later route on its own.
func TestTableReusesEveryCondition(t *testing.T) {
	const n = 80
	dest := []WeightedDestination{{Destination: Destination{Service: "s"}}}
	var routes []Route
	for i := range n {
		routes = append(routes, Route{Matches: []RouteMatch{{Headers: []HeaderMatch{
			{Name: "x-a", Value: Exact(strconv.Itoa(i))},
			{Name: "x-b", Value: Exact("yes-" + strconv.Itoa(i))},
		}}}, Destinations: dest})
	}
	for i := range n {
		routes = append(routes, Route{Matches: []RouteMatch{{Headers: []HeaderMatch{
			{Name: "x-a", Value: Exact(strconv.Itoa(i))},
		}}}, Destinations: dest})
	}
	snap, err := NewSnapshot(Spec{Services: []Service{{Name: "s", Endpoints: []Endpoint{{Address: "10.0.0.1:1"}}}}, Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.table.conds) <= memoConds {
		t.Fatalf("%d conditions do not reach past memoConds (%d)", len(snap.table.conds), memoConds)
	}
	for i := range n {
		for _, b := range []string{"yes-" + strconv.Itoa(i), "no"} {
			want := i
			if b == "no" {
				want = n + i
			}
			if got := snap.MatchIndex("/s/M", call.Attachments{"x-a": strconv.Itoa(i), "x-b": b}, nil); got != want {
				t.Errorf("x-a=%d x-b=%s: route %d, want %d", i, b, got, want)
			}
		}
	}
}

// TestMatchDoesNotAllocate covers every kind of condition, the
// case-insensitive ones on mixed-case input included.
func TestMatchDoesNotAllocate(t *testing.T) {
	dest := []WeightedDestination{{Destination: Destination{Service: "s"}}}
	snap, err := NewSnapshot(Spec{
		Services: []Service{{Name: "s", Endpoints: []Endpoint{{Address: "10.0.0.1:1"}}}},
		Routes: []Route{
			{Matches: []RouteMatch{{Path: Exact("/S/GREET").IgnoringCase(), Headers: []HeaderMatch{{Name: "x-a", Value: Contains("Q").IgnoringCase()}}}}, Destinations: dest},
			{Matches: []RouteMatch{{Path: MustRegex("/s/[A-Za-z]+"), Headers: []HeaderMatch{
				{Name: "X-A", Value: Suffix("b").IgnoringCase()},
				{Name: "x-b"},
				{Name: "x-c", Value: Exact("1"), Invert: true},
				{Name: "x-d", Value: Exact("2")},
			}}}, Destinations: dest},
			{Matches: []RouteMatch{{Headers: []HeaderMatch{{Name: "x-d", Value: Exact("3")}}, SourceLabels: map[string]string{"app": "web"}}}, Destinations: dest},
			{Destinations: dest},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := call.Attachments{"x-a": "AB", "x-b": "", "x-d": "3"}
	src := map[string]string{"app": "web"}
	if got := snap.MatchIndex("/s/Greet", a, src); got != 2 {
		t.Fatalf("MatchIndex = %d, want 2", got)
	}
	if n := testing.AllocsPerRun(100, func() { snap.MatchIndex("/s/Greet", a, src) }); n != 0 {
		t.Errorf("MatchIndex allocates %v times per call", n)
	}
}
