package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

type showFlags struct {
	xds, group, domain, output string
	port                       uint32
	timeout                    time.Duration
}

func newShowCmd(e *env) *cobra.Command {
	f := &showFlags{}
	cmd := &cobra.Command{
		Use:   "show <interface>",
		Short: "Show what a Shoal consumer of an interface gets from istiod",
		Long: `Show what a Shoal consumer of an interface sees: the host the interface maps
to, its routes (matches, weighted destinations, timeout, retries, faults),
the subsets and the endpoints with their health, as istiod serves them now.

shoal opens its own xDS stream to istiod, as a consumer does, and follows the
same path: interface name -> host (the ServiceEntry convention, --domain and
--port), then listener, routes, clusters and endpoints, translated into the
model Shoal's router runs. The interface may also be a host-level target,
xds:///host:port.

istiod's address comes from --xds, else SHOAL_XDS_ADDRESS (which 'shoal dev
up' prints), else the control plane 'shoal dev up' runs, else a gRPC xDS
bootstrap file (GRPC_XDS_BOOTSTRAP). Exit code 1
when istiod cannot be reached or has no service for the interface.`,
		Example: `  shoal show greet.GreetService --xds 127.0.0.1:15010
  SHOAL_XDS_ADDRESS=127.0.0.1:15010 shoal show greet.GreetService -o json
  shoal show xds:///greeter.default.svc.cluster.local:20000`,
		Args: exactArgs(1, "an interface name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(f.output); err != nil {
				return err
			}
			res, err := showInterface(cmd.Context(), args[0], f)
			if err != nil {
				return err
			}
			return printData(e.stdout, f.output, res, res.writeText)
		},
	}
	cmd.Flags().StringVar(&f.xds, "xds", "", "istiod's xDS address host:port (default $SHOAL_XDS_ADDRESS)")
	cmd.Flags().StringVar(&f.group, "group", "", "the interface's group (default: the default group)")
	cmd.Flags().StringVar(&f.domain, "domain", "", "domain of interface hosts (default "+mapping.DefaultDomain+")")
	cmd.Flags().Uint32Var(&f.port, "port", 0, fmt.Sprintf("port of interface hosts (default %d)", mapping.DefaultPort))
	cmd.Flags().DurationVar(&f.timeout, "timeout", 15*time.Second, "how long to wait for istiod's answer")
	addOutputFlag(cmd, &f.output)
	return cmd
}

// showResult is what `shoal show` prints.
type showResult struct {
	Interface string        `json:"interface"`
	Group     string        `json:"group,omitempty"`
	Host      string        `json:"host"`
	XDS       string        `json:"xds"`
	Revision  string        `json:"revision,omitempty"`
	Routes    []showRoute   `json:"routes"`
	Services  []showService `json:"services"`
}

type showRoute struct {
	Name         string     `json:"name,omitempty"`
	Matches      []string   `json:"matches"`
	Destinations []showDest `json:"destinations"`
	Timeout      string     `json:"timeout,omitempty"`
	Retry        *showRetry `json:"retry,omitempty"`
	Fault        *showFault `json:"fault,omitempty"`
	Mirrors      []string   `json:"mirrors,omitempty"`
}

type showDest struct {
	Service string  `json:"service"`
	Subset  string  `json:"subset,omitempty"`
	Weight  uint32  `json:"weight"`
	Percent float64 `json:"percent"`
}

type showRetry struct {
	Attempts      uint32 `json:"attempts"`
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	On            string `json:"on,omitempty"`
}

type showFault struct {
	Delay        string  `json:"delay,omitempty"`
	DelayPercent float64 `json:"delayPercent,omitempty"`
	Abort        string  `json:"abort,omitempty"`
	AbortPercent float64 `json:"abortPercent,omitempty"`
}

type showService struct {
	Name         string         `json:"name"`
	LoadBalancer string         `json:"loadBalancer,omitempty"`
	Subsets      []showSubset   `json:"subsets"`
	Endpoints    []showEndpoint `json:"endpoints"`
}

type showSubset struct {
	Name      string         `json:"name"`
	Endpoints []showEndpoint `json:"endpoints"`
}

type showEndpoint struct {
	Address string `json:"address"`
	Health  string `json:"health"`
	// Ready says whether the router calls the endpoint (unknown, healthy
	// and degraded ones).
	Ready    bool              `json:"ready"`
	Weight   uint32            `json:"weight,omitempty"`
	Locality string            `json:"locality,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

func showInterface(ctx context.Context, iface string, f *showFlags) (*showResult, error) {
	cfg, err := meshConfig(f.xds, "shoal-show")
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	quiet := slog.New(slog.DiscardHandler)
	client, err := xdsclient.New(cfg, xdsclient.WithLogger(quiet),
		xdsclient.WithBackoff(100*time.Millisecond, time.Second))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	d := xdsmesh.NewDiscovery(client, xdsmesh.WithLogger(quiet),
		xdsmesh.WithScheme(mapping.Scheme{Domain: f.domain, Port: f.port}))
	key := registry.Key{Interface: iface, Group: f.group}
	target, err := d.Target(key)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	w, err := d.Watch(ctx, key)
	if err != nil {
		return nil, err
	}
	defer w.Close()

	snap, err := firstSnapshot(ctx, w, client, f.timeout)
	if err != nil {
		return nil, err
	}
	if len(snap.Routes()) == 0 && len(snap.Services()) == 0 {
		return nil, fmt.Errorf("istiod at %s has no service for %s (host %s): apply the ServiceEntry that carries the interface (or the Kubernetes Service of its application), or check the name, --group, --domain and --port", cfg.ServerURI, iface, target)
	}
	res := newShowResult(snap)
	res.Interface, res.Group, res.Host, res.XDS = iface, f.group, target, cfg.ServerURI
	return res, nil
}

// firstSnapshot waits for the watcher's first snapshot. It fails early when
// no stream to istiod could ever be opened, and says why at the timeout.
func firstSnapshot(ctx context.Context, w registry.Watcher, client *xdsclient.Client, timeout time.Duration) (*mesh.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		snap *mesh.Snapshot
		err  error
	}
	done := make(chan result, 1)
	go func() {
		s, err := w.Next(ctx)
		done <- result{s, err}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	unreachable := func(st xdsclient.Status) error {
		return fmt.Errorf("%s; for a local istiod run 'shoal dev up' and pass the address it prints with --xds or SHOAL_XDS_ADDRESS", st.LastConnError)
	}
	for {
		select {
		case r := <-done:
			if r.err == nil {
				return r.snap, nil
			}
			st := client.Status()
			if errors.Is(r.err, context.DeadlineExceeded) {
				if st.State != xdsclient.Ready && st.LastConnError != "" {
					return nil, unreachable(st)
				}
				return nil, fmt.Errorf("istiod at %s sent no complete answer within %s (--timeout)", st.Server, timeout)
			}
			return nil, r.err
		case <-tick.C:
			if st := client.Status(); st.Streams == 0 && st.State == xdsclient.TransientFailure {
				cancel()
				<-done
				return nil, unreachable(st)
			}
		}
	}
}

func newShowResult(snap *mesh.Snapshot) *showResult {
	res := &showResult{Revision: snap.Revision(), Routes: []showRoute{}, Services: []showService{}}
	for _, r := range snap.Routes() {
		res.Routes = append(res.Routes, newShowRoute(&r))
	}
	for _, s := range snap.Services() {
		ss := showService{Name: s.Name, Subsets: []showSubset{}, Endpoints: showEndpoints(s.Endpoints)}
		if lb := s.Policy.LoadBalancer; lb != nil {
			ss.LoadBalancer = lb.Kind.String()
		}
		for _, sub := range s.Subsets {
			ss.Subsets = append(ss.Subsets, showSubset{Name: sub.Name, Endpoints: showEndpoints(sub.Endpoints)})
		}
		res.Services = append(res.Services, ss)
	}
	return res
}

func newShowRoute(r *mesh.Route) showRoute {
	sr := showRoute{Name: r.Name, Matches: []string{}, Destinations: []showDest{}}
	for _, m := range r.Matches {
		sr.Matches = append(sr.Matches, matchText(&m))
	}
	total := r.TotalWeight()
	for _, d := range r.Destinations {
		pct := 0.0
		if total > 0 {
			pct = float64(d.Weight) * 100 / float64(total)
		}
		sr.Destinations = append(sr.Destinations, showDest{Service: d.Service, Subset: d.Subset, Weight: d.Weight, Percent: pct})
	}
	p := r.Policy
	if p.Timeout > 0 {
		sr.Timeout = p.Timeout.String()
	}
	if p.Retry != nil {
		sr.Retry = &showRetry{Attempts: p.Retry.Attempts, On: p.Retry.On.String()}
		if p.Retry.PerTryTimeout > 0 {
			sr.Retry.PerTryTimeout = p.Retry.PerTryTimeout.String()
		}
	}
	if fp := p.Fault; fp != nil {
		sr.Fault = &showFault{}
		if fp.Delay != nil {
			sr.Fault.Delay, sr.Fault.DelayPercent = fp.Delay.Fixed.String(), fp.Delay.Percentage
		}
		if fp.Abort != nil {
			sr.Fault.Abort = fp.Abort.Code.String()
			if fp.Abort.HTTPStatus != 0 {
				sr.Fault.Abort = fmt.Sprintf("HTTP %d", fp.Abort.HTTPStatus)
			}
			sr.Fault.AbortPercent = fp.Abort.Percentage
		}
	}
	for _, m := range p.Mirrors {
		sr.Mirrors = append(sr.Mirrors, fmt.Sprintf("%s %g%%", m.Destination, m.Percentage))
	}
	return sr
}

// matchText writes one match as `path prefix "/x", header k exact "v"`.
func matchText(m *mesh.RouteMatch) string {
	var parts []string
	if !m.Path.IsAny() {
		parts = append(parts, "path "+stringMatchText(m.Path))
	}
	for _, h := range m.Headers {
		not := ""
		if h.Invert {
			not = "not "
		}
		parts = append(parts, "header "+h.Name+" "+not+stringMatchText(h.Value))
	}
	keys := make([]string, 0, len(m.SourceLabels))
	for k := range m.SourceLabels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, "source "+k+"="+m.SourceLabels[k])
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, ", ")
}

func stringMatchText(s mesh.StringMatch) string {
	if s.IsAny() {
		return "present"
	}
	t := fmt.Sprintf("%s %q", s.Kind(), s.Value())
	if s.IgnoreCase() {
		t += " (ignoring case)"
	}
	return t
}

func showEndpoints(eps []mesh.Endpoint) []showEndpoint {
	out := make([]showEndpoint, 0, len(eps))
	for _, ep := range eps {
		se := showEndpoint{Address: ep.Address, Health: ep.Health.String(), Ready: ep.Ready(), Weight: ep.Weight}
		if l := ep.Locality; l != (mesh.Locality{}) {
			se.Locality = l.String()
		}
		if len(ep.Labels) > 0 {
			se.Labels = ep.Labels
		}
		out = append(out, se)
	}
	return out
}

// writeText prints the result as tables, one per part.
func (r *showResult) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Interface:\t%s\n", r.Interface)
	if r.Group != "" {
		fmt.Fprintf(tw, "Group:\t%s\n", r.Group)
	}
	fmt.Fprintf(tw, "Host:\t%s\n", r.Host)
	fmt.Fprintf(tw, "istiod:\t%s\n", r.XDS)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nRoutes (first match wins):\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tMATCH\tDESTINATION\tWEIGHT\tTIMEOUT\tRETRIES\tFAULT")
	for i, rt := range r.Routes {
		match := strings.Join(rt.Matches, " | ")
		if match == "" {
			match = "any"
		}
		timeout, retries, fault := dash(rt.Timeout), "-", "-"
		if rt.Retry != nil {
			retries = fmt.Sprintf("%d x", rt.Retry.Attempts)
			if rt.Retry.PerTryTimeout != "" {
				retries += " " + rt.Retry.PerTryTimeout
			}
			if rt.Retry.On != "" {
				retries += " on " + rt.Retry.On
			}
		}
		if f := rt.Fault; f != nil {
			var parts []string
			if f.Delay != "" {
				parts = append(parts, fmt.Sprintf("delay %s %g%%", f.Delay, f.DelayPercent))
			}
			if f.Abort != "" {
				parts = append(parts, fmt.Sprintf("abort %s %g%%", f.Abort, f.AbortPercent))
			}
			fault = strings.Join(parts, ", ")
		}
		for j, d := range rt.Destinations {
			dest := d.Service
			if d.Subset != "" {
				dest += " subset " + d.Subset
			}
			weight := fmt.Sprintf("%d (%.4g%%)", d.Weight, d.Percent)
			if j == 0 {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, match, dest, weight, timeout, retries, fault)
			} else {
				fmt.Fprintf(tw, "\t\t%s\t%s\n", dest, weight)
			}
		}
		if len(rt.Destinations) == 0 {
			fmt.Fprintf(tw, "%d\t%s\t%s\t\t%s\t%s\t%s\n", i+1, match, "(none: calls fail)", timeout, retries, fault)
		}
		for _, m := range rt.Mirrors {
			fmt.Fprintf(tw, "\t\tmirror %s\n", m)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	for _, s := range r.Services {
		fmt.Fprintf(w, "\nService %s", s.Name)
		if s.LoadBalancer != "" {
			fmt.Fprintf(w, " (load balancer %s)", s.LoadBalancer)
		}
		fmt.Fprintln(w, ":")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SUBSET\tENDPOINT\tHEALTH\tCALLED\tWEIGHT\tLOCALITY")
		rows := 0
		row := func(subset string, ep showEndpoint) {
			weight := "-"
			if ep.Weight != 0 {
				weight = fmt.Sprint(ep.Weight)
			}
			called := "no"
			if ep.Ready {
				called = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", subset, ep.Address, ep.Health, called, weight, dash(ep.Locality))
			rows++
		}
		for _, ep := range s.Endpoints {
			row("(all)", ep)
		}
		for _, sub := range s.Subsets {
			for _, ep := range sub.Endpoints {
				row(sub.Name, ep)
			}
			if len(sub.Endpoints) == 0 {
				fmt.Fprintf(tw, "%s\t(no endpoints)\n", sub.Name)
				rows++
			}
		}
		if rows == 0 {
			fmt.Fprintln(tw, "(all)\t(no endpoints)")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
