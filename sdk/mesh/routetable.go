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
	groups  []exactGroup
}

// exactGroup is the plain exact tests of one input, remembered per call:
// at most one of them holds, and one look at the input settles them all.
type exactGroup struct {
	all    uint64            // the tests' condition bits
	values []string          // their values, in bit order
	bits   []uint64          // values[i]'s condition bit
	index  map[string]uint64 // value to bit, for big groups
}

// groupIndexAt is the group size from which a map beats comparing values.
const groupIndexAt = 12

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
	// group is 1 + the index of the condition's exactGroup, or 0.
	group int
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
	groupOf := map[int]int{}
	for id := range min(len(t.conds), memoConds) {
		c := &t.conds[id]
		all := exact[c.header]
		if !c.plainExact() || bits.OnesCount64(all) < 2 {
			continue
		}
		g, ok := groupOf[c.header]
		if !ok {
			t.groups = append(t.groups, exactGroup{all: all})
			g = len(t.groups)
			groupOf[c.header] = g
		}
		c.group = g
		eg := &t.groups[g-1]
		eg.values = append(eg.values, c.value.value)
		eg.bits = append(eg.bits, 1<<id)
	}
	for i := range t.groups {
		if eg := &t.groups[i]; len(eg.values) >= groupIndexAt {
			eg.index = make(map[string]uint64, len(eg.values))
			for j, v := range eg.values {
				eg.index[v] = eg.bits[j]
			}
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
// with those of its exact group.
func (t *routeTable) settle(cs *callState, id int) {
	c := &t.conds[id]
	if c.group == 0 {
		bit := uint64(1) << id
		cs.known |= bit
		if t.eval(cs, c) {
			cs.truth |= bit
		}
		return
	}
	g := &t.groups[c.group-1]
	cs.known |= g.all
	v, ok := t.input(cs, c.header)
	if !ok {
		return
	}
	if g.index != nil {
		cs.truth |= g.index[v]
		return
	}
	for i, gv := range g.values {
		if gv == v {
			cs.truth |= g.bits[i]
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
