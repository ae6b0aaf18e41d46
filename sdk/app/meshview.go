package app

import (
	"slices"
	"strings"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// MeshViewPath is where an admin endpoint serves MeshView as JSON
// (observabilityfx does; `shoal show --app` reads it).
const MeshViewPath = "/debug/mesh"

// MeshView is what the app's started references route by now, one entry
// per reference, sorted by name.
type MeshView struct {
	References []ReferenceView `json:"references"`
}

// ReferenceView is one reference: its configuration and the view of its
// current snapshot (empty and Ready false before the first one arrived).
type ReferenceView struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	Group     string `json:"group,omitempty"`
	Version   string `json:"version,omitempty"`
	// Registry is the configured registry's name and kind ("mesh (istio)"),
	// or "direct" for a reference with a URL.
	Registry string     `json:"registry"`
	Ready    bool       `json:"ready"`
	View     *mesh.View `json:"view"`
}

// MeshView returns the view of every started reference of iface, or of
// every started reference when iface is empty. It builds the views from
// the references' snapshots when called, off the call path.
func (a *App) MeshView(iface string) MeshView {
	a.mu.Lock()
	defer a.mu.Unlock()
	mv := MeshView{References: []ReferenceView{}}
	for _, rc := range a.cfg.References {
		ref, ok := a.refs[rc.Name]
		if !ok || (iface != "" && rc.Interface != iface) {
			continue
		}
		rv := ReferenceView{Name: rc.Name, Interface: rc.Interface, Group: rc.Group, Version: rc.Version, Registry: "direct"}
		if rc.URL == "" {
			rv.Registry = rc.Registry
			if r, ok := a.cfg.RegistryByName(rc.Registry); ok {
				rv.Registry += " (" + r.Kind + ")"
			}
		}
		snap := ref.Snapshot()
		rv.Ready, rv.View = snap != nil, mesh.NewView(snap)
		mv.References = append(mv.References, rv)
	}
	slices.SortFunc(mv.References, func(x, y ReferenceView) int { return strings.Compare(x.Name, y.Name) })
	return mv
}
