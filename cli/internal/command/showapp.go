package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// showApp is the app side of `shoal show --app`.
type showApp struct {
	Address   string `json:"address"`
	Reference string `json:"reference"`
	Registry  string `json:"registry"`
	// Istiod is istiod's view, which the result's own view is compared with.
	Istiod      *mesh.View `json:"istiod"`
	Differences []string   `json:"differences"`
}

// runShowApp prints the view of the app at f.app's reference to iface and
// its differences from istiod's view; exit 1 when there are any.
func runShowApp(ctx context.Context, e *env, iface string, f *showFlags) error {
	ref, err := fetchAppView(ctx, f.app, iface, f.group, f.timeout)
	if err != nil {
		return err
	}
	res, err := showInterface(ctx, iface, f)
	if err != nil {
		return err
	}
	a := &showApp{Address: f.app, Reference: ref.Name, Registry: ref.Registry, Istiod: res.View}
	if !ref.Ready {
		a.Differences = append(a.Differences, "the app's reference has no discovery state yet")
	}
	if len(res.Routes) == 0 && len(res.Services) == 0 {
		a.Differences = append(a.Differences, fmt.Sprintf("istiod has no service for %s (host %s)", iface, res.Host))
	}
	a.Differences = append(a.Differences, diffViews(ref.View, res.View)...)
	res.View, res.App = ref.View, a
	if err := printData(e.stdout, f.output, res, res.writeText); err != nil {
		return err
	}
	if n := len(a.Differences); n > 0 {
		return &exitError{code: ExitError, err: fmt.Errorf("the app's view differs from istiod's in %d place%s", n, plural(n, "", "s"))}
	}
	return nil
}

// fetchAppView reads the app's /debug/mesh and picks its reference to
// iface in group.
func fetchAppView(ctx context.Context, addr, iface, group string, timeout time.Duration) (*app.ReferenceView, error) {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, usageErrorf("--app %q: give the app's admin endpoint as host:port, such as 127.0.0.1:15000", addr)
	}
	u.Path = app.MeshViewPath
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("no admin endpoint at %s: %w; give the app's admin address (observability.admin.address in its shoal.yaml, SHOAL_OBSERVABILITY_ADMIN_ADDRESS)", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", u, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("the admin endpoint at %s serves no %s: the app runs no observabilityfx admin endpoint with its app.App (or does not serve app.MeshView there)", addr, app.MeshViewPath)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	var mv app.MeshView
	if err := json.Unmarshal(body, &mv); err != nil {
		return nil, fmt.Errorf("%s is not a mesh view: %w", u, err)
	}
	var names []string
	for i := range mv.References {
		r := &mv.References[i]
		names = append(names, fmt.Sprintf("%s (%s)", r.Name, r.Interface))
		if r.Interface == iface && r.Group == group && r.View != nil {
			return r, nil
		}
	}
	if len(names) == 0 {
		names = []string{"none"}
	}
	g := ""
	if group != "" {
		g = " in group " + group
	}
	return nil, fmt.Errorf("the app at %s has no started reference to %s%s; its references: %s", addr, iface, g, strings.Join(names, ", "))
}

// diffViews lists where the app's view differs from istiod's: the routes
// in order, then the services by name with their policy, subsets and
// endpoints (address, health, weight, locality; not labels or revision).
func diffViews(got, want *mesh.View) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if len(got.Routes) != len(want.Routes) {
		add("routes: the app has %d, istiod %d", len(got.Routes), len(want.Routes))
	}
	for i := range min(len(got.Routes), len(want.Routes)) {
		g, w := &got.Routes[i], &want.Routes[i]
		for _, f := range []struct {
			name string
			g, w any
		}{
			{"matches", g.Matches, w.Matches},
			{"destinations", destText(g.Destinations), destText(w.Destinations)},
			{"timeout", dash(g.Timeout), dash(w.Timeout)},
			{"retries", jsonText(g.Retry), jsonText(w.Retry)},
			{"fault", jsonText(g.Fault), jsonText(w.Fault)},
			{"mirrors", g.Mirrors, w.Mirrors},
		} {
			if jsonText(f.g) != jsonText(f.w) {
				add("route %d %s: the app has %v, istiod %v", i+1, f.name, f.g, f.w)
			}
		}
	}
	gs, ws := servicesByName(got), servicesByName(want)
	for _, name := range slices.Sorted(mapKeys(gs, ws)) {
		g, w := gs[name], ws[name]
		switch {
		case w == nil:
			add("service %s: only in the app's view", name)
			continue
		case g == nil:
			add("service %s: only in istiod's view", name)
			continue
		}
		for _, f := range [][3]string{
			{"load balancer", g.LoadBalancer, w.LoadBalancer},
			{"tls", g.TLS, w.TLS},
			{"max requests", fmt.Sprint(g.MaxRequests), fmt.Sprint(w.MaxRequests)},
			{"outlier detection", fmt.Sprint(g.Outlier), fmt.Sprint(w.Outlier)},
		} {
			if f[1] != f[2] {
				add("service %s %s: the app has %s, istiod %s", name, f[0], dash(f[1]), dash(f[2]))
			}
		}
		out = append(out, diffEndpoints("service "+name, g.Endpoints, w.Endpoints)...)
		gsub, wsub := subsetsByName(g), subsetsByName(w)
		for _, sub := range slices.Sorted(mapKeys(gsub, wsub)) {
			where := "service " + name + " subset " + sub
			switch gx, wx := gsub[sub], wsub[sub]; {
			case wx == nil:
				add("%s: only in the app's view", where)
			case gx == nil:
				add("%s: only in istiod's view", where)
			default:
				out = append(out, diffEndpoints(where, gx.Endpoints, wx.Endpoints)...)
			}
		}
	}
	return out
}

func diffEndpoints(where string, got, want []mesh.EndpointView) []string {
	index := func(eps []mesh.EndpointView) map[string]*mesh.EndpointView {
		m := make(map[string]*mesh.EndpointView, len(eps))
		for i := range eps {
			m[eps[i].Address] = &eps[i]
		}
		return m
	}
	g, w := index(got), index(want)
	var out []string
	for _, addr := range slices.Sorted(mapKeys(g, w)) {
		ge, we := g[addr], w[addr]
		switch {
		case we == nil:
			out = append(out, fmt.Sprintf("%s: endpoint %s only in the app's view", where, addr))
		case ge == nil:
			out = append(out, fmt.Sprintf("%s: endpoint %s only in istiod's view", where, addr))
		case ge.Health != we.Health || ge.Weight != we.Weight || ge.Locality != we.Locality:
			out = append(out, fmt.Sprintf("%s: endpoint %s is %s, weight %d, locality %s in the app's view; %s, weight %d, locality %s in istiod's",
				where, addr, ge.Health, ge.Weight, dash(ge.Locality), we.Health, we.Weight, dash(we.Locality)))
		}
	}
	return out
}

func servicesByName(v *mesh.View) map[string]*mesh.ServiceView {
	m := make(map[string]*mesh.ServiceView, len(v.Services))
	for i := range v.Services {
		m[v.Services[i].Name] = &v.Services[i]
	}
	return m
}

func subsetsByName(s *mesh.ServiceView) map[string]*mesh.SubsetView {
	m := make(map[string]*mesh.SubsetView, len(s.Subsets))
	for i := range s.Subsets {
		m[s.Subsets[i].Name] = &s.Subsets[i]
	}
	return m
}

// mapKeys returns an iterator over the keys of a and b, each once.
func mapKeys[V any](a, b map[string]V) iter.Seq[string] {
	return func(yield func(string) bool) {
		for k := range a {
			if !yield(k) {
				return
			}
		}
		for k := range b {
			if _, dup := a[k]; !dup && !yield(k) {
				return
			}
		}
	}
}

// destText writes destinations as "[svc subset v1 90, svc subset v2 10]".
func destText(ds []mesh.DestinationView) string {
	parts := make([]string, 0, len(ds))
	for _, d := range ds {
		t := d.Service
		if d.Subset != "" {
			t += " subset " + d.Subset
		}
		parts = append(parts, fmt.Sprintf("%s %d", t, d.Weight))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// writeDifferences ends the text output of `show --app`.
func (a *showApp) writeDifferences(w io.Writer) {
	if len(a.Differences) == 0 {
		fmt.Fprintf(w, "\nThe app's view matches istiod's.\n")
		return
	}
	fmt.Fprintf(w, "\nDifferences from istiod's view (%d):\n", len(a.Differences))
	for _, d := range a.Differences {
		fmt.Fprintf(w, "  - %s\n", d)
	}
}
