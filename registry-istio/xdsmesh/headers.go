package xdsmesh

import (
	"fmt"
	"slices"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// headerEdit is the net effect of a run of header edits on one header.
// Triple keeps one value per attachment, so appending to a present header
// leaves it as it is (mesh.HeaderOps.Add).
type headerEdit struct {
	kind  editKind
	value string
}

type editKind int

const (
	editNone editKind = iota
	editRemove
	editSet
	editAddIfAbsent
)

// then is e followed by n.
func (e headerEdit) then(n headerEdit) headerEdit {
	if n.kind != editAddIfAbsent {
		if n.kind == editNone {
			return e
		}
		return n
	}
	switch e.kind {
	case editNone:
		return n
	case editRemove:
		return headerEdit{kind: editSet, value: n.value}
	default: // a value is there already: adding if absent changes nothing
		return e
	}
}

// headerPlan folds Envoy's header mutation levels into one edit per header.
type headerPlan map[string]headerEdit

// apply adds one level: its removals first, then its additions in order,
// as Envoy evaluates a level.
func (p headerPlan) apply(level *xdsresource.HeaderMutations) error {
	for _, n := range level.Remove {
		p[n] = p[n].then(headerEdit{kind: editRemove})
	}
	for _, o := range level.Add {
		if o.Value == "" && !o.KeepEmptyValue {
			continue // Envoy drops a header with an empty value
		}
		e := headerEdit{kind: editAddIfAbsent, value: o.Value}
		switch o.Action {
		case xdsresource.AppendIfExistsOrAdd, xdsresource.AddIfAbsent:
		case xdsresource.OverwriteIfExistsOrAdd:
			e.kind = editSet
		default:
			return fmt.Errorf("request header %q: append_action %v (replace only when present) cannot be expressed by the mesh model", o.Name, o.Action)
		}
		p[o.Name] = p[o.Name].then(e)
	}
	return nil
}

// ops turns the plan into the mesh model's edits.
func (p headerPlan) ops() mesh.HeaderOps {
	var h mesh.HeaderOps
	for name, e := range p {
		switch e.kind {
		case editRemove:
			h.Remove = append(h.Remove, name)
		case editSet:
			if h.Set == nil {
				h.Set = map[string]string{}
			}
			h.Set[name] = e.value
		case editAddIfAbsent:
			if h.Add == nil {
				h.Add = map[string]string{}
			}
			h.Add[name] = e.value
		}
	}
	slices.Sort(h.Remove)
	return h
}

// headerLevels are the header edits of the levels enclosing a route.
type headerLevels struct {
	config, virtualHost *xdsresource.HeaderMutations
	mostSpecificWins    bool
}

// requestHeaders folds a route's header edits, and those of the levels
// around it, into the mesh route: on its policy when no weighted cluster
// has edits of its own, else on each destination (the mesh model applies
// the route's edits before the destination's, while Envoy by default
// applies the weighted cluster's first, so a route-level edit cannot stay
// on the policy once a destination has edits).
func requestHeaders(mr *mesh.Route, r *xdsresource.Route, around headerLevels) error {
	perCluster := false
	for i := range r.WeightedClusters {
		perCluster = perCluster || !r.WeightedClusters[i].RequestHeaders.IsZero()
	}
	fold := func(wc *xdsresource.HeaderMutations) (mesh.HeaderOps, error) {
		levels := []*xdsresource.HeaderMutations{wc, &r.RequestHeaders, around.virtualHost, around.config}
		if around.mostSpecificWins {
			slices.Reverse(levels)
		}
		p := headerPlan{}
		for _, l := range levels {
			if l == nil {
				continue
			}
			if err := p.apply(l); err != nil {
				return mesh.HeaderOps{}, err
			}
		}
		return p.ops(), nil
	}
	if !perCluster {
		ops, err := fold(nil)
		mr.Policy.RequestHeaders = ops
		return err
	}
	for i := range r.WeightedClusters {
		ops, err := fold(&r.WeightedClusters[i].RequestHeaders)
		if err != nil {
			return err
		}
		mr.Destinations[i].RequestHeaders = ops
	}
	return nil
}
