package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	xds, group, domain, output, app string
	port                            uint32
	timeout                         time.Duration
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
when istiod cannot be reached or has no service for the interface.

With --app <admin host:port>, shoal reads what a running app's reference to
the interface routes by from the app's admin endpoint (/debug/mesh, served
by observabilityfx or app.MeshView), prints it the same way, and lists where
it differs from istiod's view: routes, weights, timeouts, retries, faults,
services, subsets, endpoints and their health. A difference means the app
is not following istiod now (another registry, a stale or lost stream).
Exit code 1 when there is a difference.`,
		Example: `  shoal show greet.GreetService --xds 127.0.0.1:15010
  SHOAL_XDS_ADDRESS=127.0.0.1:15010 shoal show greet.GreetService -o json
  shoal show xds:///greeter.default.svc.cluster.local:20000
  shoal show greet.GreetService --app 127.0.0.1:15020`,
		Args: exactArgs(1, "an interface name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(f.output); err != nil {
				return err
			}
			if f.app != "" {
				return runShowApp(cmd.Context(), e, args[0], f)
			}
			res, err := showInterface(cmd.Context(), args[0], f)
			if err != nil {
				return err
			}
			return printData(e.stdout, f.output, res, res.writeText)
		},
	}
	cmd.Flags().StringVar(&f.xds, "xds", "", "istiod's xDS address host:port (default $SHOAL_XDS_ADDRESS)")
	cmd.Flags().StringVar(&f.app, "app", "", "a running app's admin endpoint host:port: show what its reference sees and where it differs from istiod")
	cmd.Flags().StringVar(&f.group, "group", "", "the interface's group (default: the default group)")
	cmd.Flags().StringVar(&f.domain, "domain", "", "domain of interface hosts (default "+mapping.DefaultDomain+")")
	cmd.Flags().Uint32Var(&f.port, "port", 0, fmt.Sprintf("port of interface hosts (default %d)", mapping.DefaultPort))
	cmd.Flags().DurationVar(&f.timeout, "timeout", 15*time.Second, "how long to wait for istiod's answer")
	addOutputFlag(cmd, &f.output)
	return cmd
}

// showResult is what `shoal show` prints: istiod's view of the interface
// or, with --app, the app's view and its differences from istiod's.
type showResult struct {
	Interface string `json:"interface"`
	Group     string `json:"group,omitempty"`
	Host      string `json:"host"`
	XDS       string `json:"xds"`
	*mesh.View
	App *showApp `json:"app,omitempty"`
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
	if len(snap.Routes()) == 0 && len(snap.Services()) == 0 && f.app == "" {
		return nil, fmt.Errorf("istiod at %s has no service for %s (host %s): apply the ServiceEntry that carries the interface (or the Kubernetes Service of its application), or check the name, --group, --domain and --port", cfg.ServerURI, iface, target)
	}
	res := &showResult{Interface: iface, Group: f.group, Host: target, XDS: cfg.ServerURI, View: mesh.NewView(snap)}
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

// writeText prints the result as tables, one per part.
func (r *showResult) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Interface:\t%s\n", r.Interface)
	if r.Group != "" {
		fmt.Fprintf(tw, "Group:\t%s\n", r.Group)
	}
	fmt.Fprintf(tw, "Host:\t%s\n", r.Host)
	fmt.Fprintf(tw, "istiod:\t%s\n", r.XDS)
	if a := r.App; a != nil {
		fmt.Fprintf(tw, "App:\t%s (reference %s, registry %s)\n", a.Address, a.Reference, a.Registry)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.App != nil {
		fmt.Fprintf(w, "\nWhat the app's reference routes by:\n")
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
		row := func(subset string, ep mesh.EndpointView) {
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
	if r.App != nil {
		r.App.writeDifferences(w)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
