// Package demo is Shoal's main job, run by `make demo`: a real proxyless mesh
// on this machine and a live traffic shift through it.
//
//  1. A local control plane built from source: etcd, kube-apiserver,
//     kube-controller-manager and istiod (localmesh).
//  2. Providers of greet.GreetService in containers published as Pods: Go
//     v1 and v2, and a Java Dubbo 3.3 provider (on a jlink runtime), all
//     selected by one ServiceEntry whose host is derived from the interface
//     name.
//  3. A Shoal consumer that names only greet.GreetService: registry-istio
//     finds the host and endpoints through istiod, router-mesh applies the
//     VirtualService and DestinationRule in-process. No sidecar anywhere.
//  4. A live shift with kubectl-style applies of the VirtualService:
//     v1 -> v1/v2 -> v2 -> v2/java -> java, printing the split as it follows
//     istiod's pushes, and counting failed calls (there should be none).
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalmesh/shoal/interop/peer/java"
	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/mapping"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// Options tune a run.
type Options struct {
	// Out receives the progress and the live split (default io.Discard).
	Out io.Writer
	// RepoRoot is the repository's root (for the provider's source and the
	// Java samples' jar).
	RepoRoot string
	// Phase is how long each traffic split is held (default 4s).
	Phase time.Duration
	// Rate is the consumer's calls per second (default 200).
	Rate int
	// Logger gets the components' logs (default: discarded).
	Logger *slog.Logger
	// MinCalls makes each phase last, beyond Phase, until this many calls
	// completed (bounded by a minute), so that a slow machine still gives
	// each split enough calls to judge it. 0: Phase alone.
	MinCalls int
}

// Subsets are the versions traffic shifts between.
var Subsets = []string{"v1", "v2", "java"}

// Phase is one traffic split and what the consumer saw while it held.
type Phase struct {
	// Weights by subset, as applied.
	Weights map[string]int
	// Followed is the time from the apply until the consumer's registry
	// held the new split.
	Followed time.Duration
	// Served counts successful calls by subset while the split held (from
	// Followed on).
	Served map[string]int
	// Failed counts failed calls during the phase.
	Failed int
}

// Result is what a run measured.
type Result struct {
	Phases []Phase
	// Calls and Failed count every call of the run.
	Calls, Failed int64
	// FirstError is the first failure, if any.
	FirstError string
}

// Plan is the sequence of splits the demo applies (weights of v1, v2, java).
var Plan = [][3]int{{100, 0, 0}, {50, 50, 0}, {0, 100, 0}, {0, 50, 50}, {0, 0, 100}}

const (
	ns   = "default"
	app  = "greeter"
	port = 20000
)

// Run runs the demo and stops everything it started before it returns.
func Run(ctx context.Context, o Options) (_ *Result, err error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Phase <= 0 {
		o.Phase = 4 * time.Second
	}
	if o.Rate <= 0 {
		o.Rate = 200
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	out := o.Out
	start := time.Now()
	step := func(format string, a ...any) {
		_, _ = fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}

	step("starting the control plane: etcd, kube-apiserver, kube-controller-manager, istiod (built from source, cached)")
	m, err := localmesh.Start(ctx, localmesh.WithLogger(o.Logger))
	if err != nil {
		return nil, err
	}
	defer m.Stop()
	step("control plane ready; istiod xDS at %s", m.IstiodAddr(0))

	eng, err := localmesh.NewEngine(ctx, o.Logger)
	if err != nil {
		return nil, err
	}
	defer func() { _ = eng.Close() }()
	step("building the Go provider image (FROM scratch, static binary)")
	image, err := eng.BuildGoImage(ctx, localmesh.GoImage{Name: "shoal-meshgreeter", Dir: filepath.Join(o.RepoRoot, "interop"), Package: "./cmd/meshgreeter"})
	if err != nil {
		return nil, err
	}
	for _, v := range []string{"v1", "v2"} {
		w, err := m.RunWorkload(ctx, eng, localmesh.WorkloadSpec{
			Name: app + "-" + v, Namespace: ns, Image: image,
			Labels:    map[string]string{"app": app, "version": v},
			Env:       map[string]string{"VERSION": v, "PORT": fmt.Sprint(port)},
			ReadyPort: port,
		})
		if err != nil {
			return nil, err
		}
		defer func() { _ = w.Stop(context.WithoutCancel(ctx), 5*time.Second) }()
		step("Go provider %s running in a container as Pod %s/%s at %s", v, ns, w.Name(), w.Addr(port))
	}

	jar, err := java.Jar(o.RepoRoot)
	if err != nil {
		return nil, err
	}
	step("building the Java Dubbo 3.3 provider image (FROM scratch, a jlink runtime of this machine's JDK)")
	javaImage, err := eng.BuildJavaImage(ctx, localmesh.JavaImage{Name: "shoal-java-samples", Jar: jar})
	if err != nil {
		return nil, err
	}
	jw, err := m.RunWorkload(ctx, eng, localmesh.WorkloadSpec{
		Name: app + "-java", Namespace: ns, Image: javaImage,
		Labels:    map[string]string{"app": app, "version": "java"},
		Args:      []string{"provider-idl", "--port", fmt.Sprint(port), "--export", ":"},
		ReadyPort: port,
	})
	if err != nil {
		return nil, fmt.Errorf("demo: Java provider: %w", err)
	}
	defer func() { _ = jw.Stop(context.WithoutCancel(ctx), 10*time.Second) }()
	step("Java provider running in a container as Pod %s/%s at %s", ns, jw.Name(), jw.Addr(port))

	key := registry.Key{Interface: greettriple.GreetServiceName}
	// The ServiceEntry from registry-istio's convention, as the chart of
	// 'shoal new' carries it.
	greeter := mapping.Application{Name: app, Namespace: ns, Interfaces: []registry.Key{key}, TargetPort: port}
	var scheme mapping.Scheme
	seName, se, err := scheme.ServiceEntry(greeter)
	if err != nil {
		return nil, err
	}
	manifest, err := scheme.Manifest(greeter)
	if err != nil {
		return nil, err
	}
	if err := m.Apply(ctx, string(manifest)); err != nil {
		return nil, err
	}
	host := se.GetHosts()[0]
	if err := m.Apply(ctx, fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: %[3]s, namespace: %[1]s}
spec:
  host: %[2]s
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: java, labels: {version: java}}
---
%[4]s`, ns, host, app, virtualService(host, Plan[0]))); err != nil {
		return nil, err
	}
	step("applied ServiceEntry %s (host %s, derived from the interface name), DestinationRule subsets v1/v2/java, VirtualService 100%% v1", seName, host)

	reg, err := registryistio.New(&bootstrap.Config{ServerURI: m.IstiodAddr(0), Node: bootstrap.Identity{
		PodName: "demo-consumer", Namespace: ns, IPs: []string{"127.0.0.1"},
	}.Node()}, registryistio.WithLogger(o.Logger))
	if err != nil {
		return nil, err
	}
	defer func() { _ = reg.Close() }()
	engine := router.BuildEngine(routermesh.Builder(routermesh.WithLogger(o.Logger)), router.EngineOptions{Service: key.Interface, Logger: o.Logger})
	ref, err := consumer.New(key, reg, tri.NewTransport(), consumer.WithEngine(engine), consumer.WithLogger(o.Logger), consumer.WithWaitForReady())
	if err != nil {
		return nil, err
	}
	defer func() { _ = ref.Close() }()
	client := greettriple.NewGreetServiceClient(tri.NewClient(ref))
	// istiod takes a moment to push what was just applied: retry the first
	// call for a while, as a consumer starting with its providers would.
	first := time.Now()
	for attempt := 0; ; attempt++ {
		_, err := client.Greet(ctx, &greet.GreetRequest{Name: "demo"})
		if err == nil {
			break
		}
		if attempt == 100 {
			return nil, fmt.Errorf("demo: the first call by interface name: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	step("Shoal consumer called %s by interface name only; first success %v after it started, no sidecar", key.Interface, time.Since(first).Round(time.Millisecond))

	res := &Result{}
	load := newLoad(client, o.Rate)
	lctx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); load.run(lctx) }()
	defer func() {
		stopLoad()
		<-loadDone
		res.Calls, res.Failed = load.calls.Load(), load.failed.Load()
		if e := load.firstErr.Load(); e != nil {
			res.FirstError = e.(string)
		}
	}()

	_, _ = fmt.Fprintf(out, "\nLive traffic split (%d calls/s, each line is one second):\n", o.Rate)
	for i, w := range Plan {
		weights := map[string]int{"v1": w[0], "v2": w[1], "java": w[2]}
		ph := Phase{Weights: weights}
		if i > 0 {
			step("kubectl apply VirtualService: %s", describe(weights))
			ph.Followed, err = applyAndWait(ctx, m, reg, key, virtualService(host, w), w)
			if err != nil {
				return res, err
			}
			step("istiod pushed it; the consumer follows %v after the apply", ph.Followed.Round(time.Millisecond))
		} else {
			step("VirtualService: %s", describe(weights))
		}
		load.snapshot() // count this phase from here
		phaseStart := time.Now()
		deadline := phaseStart.Add(o.Phase)
		done := 0
		for time.Now().Before(deadline) || done < o.MinCalls && time.Since(phaseStart) < time.Minute {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(time.Second):
			}
			sec := load.snapshot()
			for s, n := range sec.served {
				if ph.Served == nil {
					ph.Served = map[string]int{}
				}
				ph.Served[s] += n
			}
			ph.Failed += sec.failed
			done += sec.failed
			for _, n := range sec.served {
				done += n
			}
			_, _ = fmt.Fprintln(out, "         "+bar(sec))
		}
		res.Phases = append(res.Phases, ph)
	}
	stopLoad()
	<-loadDone
	step("done: %d calls, %d failed; stopping everything", load.calls.Load(), load.failed.Load())
	return res, nil
}

func virtualService(host string, w [3]int) string {
	var routes strings.Builder
	for i, s := range Subsets {
		if w[i] > 0 {
			fmt.Fprintf(&routes, "    - {destination: {host: %s, subset: %s}, weight: %d}\n", host, s, w[i])
		}
	}
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %s, namespace: %s}
spec:
  hosts: [%s]
  http:
  - route:
%s`, app, ns, host, routes.String())
}

// applyAndWait applies the VirtualService and returns when the consumer's
// registry holds the new weights.
func applyAndWait(ctx context.Context, m *localmesh.Mesh, reg *registryistio.Registry, key registry.Key, yaml string, w [3]int) (time.Duration, error) {
	watch, err := reg.Watch(ctx, key)
	if err != nil {
		return 0, err
	}
	defer func() { _ = watch.Close() }()
	applied := time.Now()
	if err := m.Apply(ctx, yaml); err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		snap, err := watch.Next(wctx)
		if err != nil {
			return 0, fmt.Errorf("demo: the new split never reached the consumer: %w", err)
		}
		if hasWeights(snap, w) {
			return time.Since(applied), nil
		}
	}
}

func hasWeights(s *mesh.Snapshot, w [3]int) bool {
	rs := s.Routes()
	if len(rs) != 1 {
		return false
	}
	got := map[string]int{}
	ds := rs[0].Destinations
	for _, d := range ds {
		got[d.Subset] += int(d.Weight)
	}
	if len(ds) == 1 {
		got[ds[0].Subset] = 100 // a lone destination carries no weight
	}
	for i, sub := range Subsets {
		if got[sub] != w[i] {
			return false
		}
	}
	return true
}

func describe(w map[string]int) string {
	var parts []string
	for _, s := range Subsets {
		if w[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d%%", s, w[s]))
		}
	}
	return strings.Join(parts, ", ")
}

// subsetOf tells which workload served a call from its served_by: Go
// providers answer "<pod>/<version>", the Java one "java@<port>".
func subsetOf(servedBy string) string {
	if strings.HasPrefix(servedBy, "java@") {
		return "java"
	}
	if _, v, ok := strings.Cut(servedBy, "/"); ok {
		return v
	}
	return servedBy
}

// load calls at a steady rate from a few goroutines and counts outcomes.
type load struct {
	client greettriple.GreetServiceClient
	rate   int

	calls, failed atomic.Int64
	firstErr      atomic.Value

	mu     sync.Mutex
	served map[string]int
	fails  int
	lats   []time.Duration
}

func newLoad(c greettriple.GreetServiceClient, rate int) *load {
	return &load{client: c, rate: rate, served: map[string]int{}}
}

const workers = 4

func (l *load) run(ctx context.Context) {
	var wg sync.WaitGroup
	every := time.Second * workers / time.Duration(l.rate)
	for range workers {
		wg.Go(func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				begin := time.Now()
				resp, err := l.client.Greet(ctx, &greet.GreetRequest{Name: "demo"})
				if ctx.Err() != nil {
					return // stopping: not a failure of the mesh
				}
				d := time.Since(begin)
				l.calls.Add(1)
				l.mu.Lock()
				if err != nil {
					l.failed.Add(1)
					l.fails++
					l.firstErr.CompareAndSwap(nil, err.Error())
				} else {
					l.served[subsetOf(resp.GetServedBy())]++
					l.lats = append(l.lats, d)
				}
				l.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

type second struct {
	served map[string]int
	failed int
	p50    time.Duration
}

// snapshot returns the counts since the last snapshot and resets them.
func (l *load) snapshot() second {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := second{served: l.served, failed: l.fails}
	if len(l.lats) > 0 {
		slices.Sort(l.lats)
		s.p50 = l.lats[len(l.lats)/2]
	}
	l.served, l.fails, l.lats = map[string]int{}, 0, l.lats[:0]
	return s
}

func bar(s second) string {
	total := s.failed
	for _, n := range s.served {
		total += n
	}
	if total == 0 {
		return "(no calls)"
	}
	var b strings.Builder
	names := append([]string(nil), Subsets...)
	for n := range s.served {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	sort.Strings(names[len(Subsets):])
	for _, n := range names {
		pct := 100 * s.served[n] / total
		fmt.Fprintf(&b, "%-4s %3d%% %-20s ", n, pct, strings.Repeat("#", pct/5))
	}
	fmt.Fprintf(&b, "| %3d calls, %d failed, p50 %v", total, s.failed, s.p50.Round(10*time.Microsecond))
	return b.String()
}

// ErrFailedCalls is returned by callers that treat a failed call as a demo
// failure.
var ErrFailedCalls = errors.New("demo: calls failed during the traffic shift")
