package mesh

import (
	"math/bits"
	"strings"

	"github.com/shoalmesh/shoal/sdk/call"
)

// routeTable is a snapshot's routes compiled for matching. Every distinct
// condition (the path or one header against one matcher) is stored once and
// evaluated at most once per call, however many routes repeat it: routes of
// one VirtualService tend to share their path and most of their headers. The
// header values the conditions read are looked up once per call, on first
// use. Results are exactly those of evaluating each Route with Applies.
type routeTable struct {
	routes  []tableRoute // parallel to Snapshot.routes
	matches []tableMatch
	condIDs []uint32 // conditions past memoConds, by index into conds
	conds   []condition
	headers []string // the distinct lower-case header names conditions read
}

// tableRoute is one route's matches, matches[first:end]; none means the
// route matches every call.
type tableRoute struct{ first, end uint32 }

// tableMatch is one RouteMatch: the conditions in need, those in
// condIDs[first:end] (conditions past memoConds) and the source labels must
// all hold.
type tableMatch struct {
	need       uint64
	first, end uint32
	source     map[string]string
}

// condition is one test of the path (header < 0) or of header slot header.
type condition struct {
	header int
	value  StringMatch
	invert bool
	// exclusive is, for a plain exact test remembered per call, the set of
	// such tests of the same input (this one included): at most one of them
	// holds, and one look at the input settles them all.
	exclusive uint64
}

const (
	// memoConds is how many conditions a call remembers the results of;
	// conditions beyond it are evaluated each time they are met.
	memoConds = 64
	// headerSlots is how many header values a call keeps once looked up;
	// headers beyond it are looked up each time.
	headerSlots = 16
)

// callState is the per-call memory of a match, kept on the caller's stack.
type callState struct {
	path    string
	a       call.Attachments
	known   uint64 // conditions evaluated so far
	truth   uint64 // their results
	fetched uint32 // header slots looked up so far
	present uint32 // those found
	vals    [headerSlots]string
}

// compileRoutes builds the table for routes, whose header matches are already
// validated. Conditions are keyed by what they compare, so equal matchers
// on one input share one condition.
func compileRoutes(routes []Route) routeTable {
	type condKey struct {
		header     int
		kind       MatchKind
		value      string
		ignoreCase bool
		invert     bool
	}
	var t routeTable
	slots := map[string]int{}
	ids := map[condKey]int{}
	var tm tableMatch
	add := func(c condition) {
		k := condKey{c.header, c.value.kind, c.value.value, c.value.ignoreCase, c.invert}
		id, ok := ids[k]
		if !ok {
			id = len(t.conds)
			ids[k] = id
			t.conds = append(t.conds, c)
		}
		if id < memoConds {
			tm.need |= 1 << id
		} else {
			t.condIDs = append(t.condIDs, uint32(id))
		}
	}
	t.routes = make([]tableRoute, len(routes))
	for i := range routes {
		r := &routes[i]
		t.routes[i].first = uint32(len(t.matches))
		for j := range r.Matches {
			m := &r.Matches[j]
			tm = tableMatch{first: uint32(len(t.condIDs))}
			if !m.Path.IsAny() {
				add(condition{header: -1, value: m.Path})
			}
			for k := range m.Headers {
				h := &m.Headers[k]
				name := strings.ToLower(h.Name)
				slot, ok := slots[name]
				if !ok {
					slot = len(t.headers)
					slots[name] = slot
					t.headers = append(t.headers, name)
				}
				add(condition{header: slot, value: h.Value, invert: h.Invert})
			}
			tm.end = uint32(len(t.condIDs))
			if len(m.SourceLabels) > 0 {
				tm.source = m.SourceLabels
			}
			t.matches = append(t.matches, tm)
		}
		t.routes[i].end = uint32(len(t.matches))
	}
	// Group the plain exact tests of each input, as routes that pick a
	// version or tenant by one header's value have them.
	exact := map[int]uint64{}
	for id := range min(len(t.conds), memoConds) {
		if c := &t.conds[id]; c.plainExact() {
			exact[c.header] |= 1 << id
		}
	}
	for id := range min(len(t.conds), memoConds) {
		if c := &t.conds[id]; c.plainExact() && bits.OnesCount64(exact[c.header]) > 1 {
			c.exclusive = exact[c.header]
		}
	}
	return t
}

func (c *condition) plainExact() bool {
	return c.value.kind == MatchExact && !c.value.ignoreCase && !c.invert
}

// match returns the index of the first route that applies, or -1.
func (t *routeTable) match(path string, a call.Attachments, source map[string]string) int {
	cs := callState{path: path, a: a}
	for i, r := range t.routes {
		if r.first == r.end {
			return i
		}
		for j := r.first; j < r.end; j++ {
			m := &t.matches[j]
			if m.need&cs.known&^cs.truth != 0 {
				continue // a condition it needs is already known false
			}
			if t.matchOne(&cs, m, source) {
				return i
			}
		}
	}
	return -1
}

// matchOne reports whether the call satisfies m. Conditions are evaluated
// in the order they first appear in the routes, each at most once per call
// (up to memoConds of them); a match fails as soon as one it needs is known
// to be false.
func (t *routeTable) matchOne(cs *callState, m *tableMatch, source map[string]string) bool {
	for {
		if m.need&cs.known&^cs.truth != 0 {
			return false
		}
		todo := m.need &^ cs.known
		if todo == 0 {
			break
		}
		t.settle(cs, bits.TrailingZeros64(todo))
	}
	for _, id := range t.condIDs[m.first:m.end] {
		if !t.eval(cs, &t.conds[id]) {
			return false
		}
	}
	return m.source == nil || selects(m.source, source)
}

// settle evaluates condition id (< memoConds) and remembers the result,
// with those of its exclusive group.
func (t *routeTable) settle(cs *callState, id int) {
	c := &t.conds[id]
	if c.exclusive == 0 {
		bit := uint64(1) << id
		cs.known |= bit
		if t.eval(cs, c) {
			cs.truth |= bit
		}
		return
	}
	cs.known |= c.exclusive
	v, ok := t.input(cs, c.header)
	if !ok {
		return
	}
	for g := c.exclusive; g != 0; g &= g - 1 {
		j := bits.TrailingZeros64(g)
		if t.conds[j].value.value == v {
			cs.truth |= 1 << j
			return
		}
	}
}

func (t *routeTable) eval(cs *callState, c *condition) bool {
	v, ok := t.input(cs, c.header)
	// An absent header fails the value test, so an inverted test passes
	// (Istio's withoutHeaders; an inverted presence test wants it absent).
	return (ok && c.value.match(v)) != c.invert
}

// input returns the path (i < 0) or the value of header slot i.
func (t *routeTable) input(cs *callState, i int) (string, bool) {
	if i < 0 {
		return cs.path, true
	}
	return t.header(cs, i)
}

// header returns the value of header slot i, looking it up once per call.
func (t *routeTable) header(cs *callState, i int) (string, bool) {
	if i >= headerSlots {
		v, ok := cs.a[t.headers[i]]
		return v, ok
	}
	bit := uint32(1) << i
	if cs.fetched&bit == 0 {
		cs.fetched |= bit
		if v, ok := cs.a[t.headers[i]]; ok {
			cs.vals[i] = v
			cs.present |= bit
		}
	}
	return cs.vals[i], cs.present&bit != 0
}
