package securitye2e_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// The soak's provider: Service soak-greeter at this loopback address.
const (
	soakService = "soak-greeter"
	soakIP      = "127.0.0.42"
	// soakRate is the calls per second through the consumer's reference,
	// spread over soakWorkers callers.
	soakRate    = 100
	soakWorkers = 4
)

// soakPlan is how long the soak runs, the certificates' TTL and how long
// istiod is stopped in the middle.
type soakPlan struct {
	duration, ttl, outage time.Duration
}

// soakPlanFromEnv: SHOAL_SOAK set runs the acceptance soak (5 minutes,
// 90 s certificates, istiod stopped for 30 s); otherwise a short run that
// keeps make test reasonable (60 s, 40 s certificates, 10 s stop).
// SHOAL_SOAK_DURATION overrides the duration of either. The TTL leaves
// room for the stop: a certificate renewed at the earliest (0.4 of its
// life) just as istiod stops must outlive the stop and istiod's restart.
func soakPlanFromEnv(t *testing.T) soakPlan {
	t.Helper()
	p := soakPlan{duration: time.Minute, ttl: 40 * time.Second, outage: 10 * time.Second}
	if os.Getenv("SHOAL_SOAK") != "" {
		p = soakPlan{duration: 5 * time.Minute, ttl: 90 * time.Second, outage: 30 * time.Second}
	}
	if v := os.Getenv("SHOAL_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < p.outage+10*time.Second {
			t.Fatalf("SHOAL_SOAK_DURATION=%q: give a duration of at least %v (istiod's stop and 10s), such as 5m", v, p.outage+10*time.Second)
		}
		p.duration = d
	}
	return p
}

// certLog records every certificate an identity.Source used (the first
// one included), through identity.WithOnUpdate.
type certLog struct {
	mu      sync.Mutex
	serials []*big.Int
	changed chan struct{}
}

func newCertLog() *certLog { return &certLog{changed: make(chan struct{})} }

func (l *certLog) add(c *tls.Certificate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.serials = append(l.serials, c.Leaf.SerialNumber)
	close(l.changed)
	l.changed = make(chan struct{})
}

// rotations is the number of renewals so far, and a channel closed at the
// next one.
func (l *certLog) rotations() (int, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.serials) - 1, l.changed
}

// index is the position of serial among the certificates used, or -1.
func (l *certLog) index(serial *big.Int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, s := range l.serials {
		if s.Cmp(serial) == 0 {
			return i
		}
	}
	return -1
}

// tally counts the soak's calls.
type tally struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
}

func (c *tally) record(err error) {
	if err == nil {
		c.ok.Add(1)
		return
	}
	c.failed.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) < 5 {
		c.errs = append(c.errs, fmt.Sprintf("%s: %v", time.Now().Format(time.TimeOnly), err))
	}
}

// clientCerts records, per request name, the serial of the client
// certificate the provider's handler saw (a server interceptor).
type clientCerts struct{ m sync.Map }

func (c *clientCerts) interceptor() triple.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *triple.UnaryServerInfo, h triple.UnaryHandler) (any, error) {
		if r, ok := req.(*greet.GreetRequest); ok && strings.HasPrefix(r.GetName(), "fresh-") {
			if p, ok := triple.PeerFromContext(ctx); ok && p.TLS != nil && len(p.TLS.PeerCertificates) > 0 {
				c.m.Store(r.GetName(), p.TLS.PeerCertificates[0].SerialNumber)
			}
		}
		return h(ctx, req)
	}
}

func (c *clientCerts) get(name string) *big.Int {
	v, _ := c.m.Load(name)
	s, _ := v.(*big.Int)
	return s
}

// TestRotationSoak: a Shoal provider (inbound.Guard, PeerAuthentication
// STRICT) and a Shoal consumer (DestinationRule ISTIO_MUTUAL, the mTLS
// transport) with short-lived certificates from istiod, called at 100/s
// while the certificates rotate on both sides and istiod is stopped in the
// middle. Besides the long-lived connection of the reference, a new
// mutual-TLS connection is made every second, so handshakes run on every
// certificate. It asserts no failed call, at least two rotations on each
// side during the load, and that new handshakes present the new
// certificates on both sides.
func TestRotationSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and istiod and runs for a minute or more; run without -short (make test)")
	}
	plan := soakPlanFromEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), plan.duration+2*plan.ttl+3*time.Minute)
	defer cancel()
	m, err := localmesh.Start(ctx, localmesh.WithoutControllerManager(), localmesh.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	t.Logf("plan: %v of calls at %d/s, %v certificates, istiod stopped for %v in the middle", plan.duration, soakRate, plan.ttl, plan.outage)

	backoff := identity.WithBackoff(mesh.Backoff{Base: 100 * time.Millisecond, Max: time.Second})
	provCerts, consCerts, seen := newCertLog(), newCertLog(), &clientCerts{}
	s := startGuarded(ctx, t, m, guardedSpec{
		service: soakService, sa: "soak-provider", ip: soakIP,
		identityOpts: []identity.Option{identity.WithTTL(plan.ttl), backoff, identity.WithOnUpdate(provCerts.add)},
		serverOpts:   []triple.ServerOption{triple.WithUnaryInterceptors(seen.interceptor())},
	})
	applyStrict(ctx, t, m, s)

	consW := newWorkload(ctx, t, m, "soak-consumer")
	consSrc, err := consW.source(ctx, m, identity.WithTTL(plan.ttl), backoff, identity.WithOnUpdate(consCerts.add))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = consSrc.Close() }()
	xc, err := xdsclient.New(xdsConfig(m, consW), xdsclient.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = xc.Close() }()
	disc := xdsmesh.NewDiscovery(xc, xdsmesh.WithLogger(quiet))
	host := soakService + ".default.svc.cluster.local"
	target := "xds:///" + host + ":" + s.addr[strings.LastIndex(s.addr, ":")+1:]
	if err := m.Apply(ctx, istioMutual(soakService, host)); err != nil {
		t.Fatal(err)
	}
	waitForTargetTLS(ctx, t, disc, target, (*mesh.TLS).Secure)
	ref := newTargetRef(t, disc, tri.NewTransport().WithClusterTLS(consSrc.ClusterTLS), target)
	defer func() { _ = ref.Close() }()
	client := greettriple.NewGreetServiceClient(tri.NewClient(ref))
	if err := greetTriple(t, client); err != nil {
		t.Fatalf("first call over mutual TLS: %v", err)
	}

	// The load: the reference at soakRate, and a new connection a second.
	var calls, fresh tally
	var freshN atomic.Int64
	serverSerials := &sync.Map{} // provider certificate serials presented to new connections
	dialFresh := func() (string, *big.Int, error) {
		name := fmt.Sprintf("fresh-%d", freshN.Add(1))
		var served atomic.Pointer[big.Int]
		cfg := consSrc.ClientTLSConfig(identity.AllowIDs(s.id))
		verify := cfg.VerifyConnection
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				served.Store(cs.PeerCertificates[0].SerialNumber)
			}
			return verify(cs)
		}
		cc, err := triple.Dial(s.addr, triple.WithTLS(cfg))
		if err != nil {
			return name, nil, err
		}
		defer func() { _ = cc.Close() }()
		err = greetNamed(ctx, greettriple.NewGreetServiceClient(cc), name)
		return name, served.Load(), err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	for range soakWorkers {
		every(loadCtx, &wg, soakWorkers*time.Second/soakRate, func() { calls.record(greetNamed(ctx, client, "load")) })
	}
	every(loadCtx, &wg, time.Second, func() {
		_, served, err := dialFresh()
		fresh.record(err)
		if served != nil {
			serverSerials.Store(served.String(), served)
		}
	})

	start := time.Now()
	provStart, _ := provCerts.rotations()
	consStart, _ := consCerts.rotations()
	waitUntil(ctx, t, start.Add(plan.duration/2-plan.outage/2))
	if err := m.StopIstiod(0); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Logf("istiod stopped %v into the load", stopped.Sub(start).Round(time.Second))
	waitUntil(ctx, t, stopped.Add(plan.outage))
	if err := m.StartIstiod(ctx, 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("istiod serving again after %v", time.Since(stopped).Round(100*time.Millisecond))
	waitUntil(ctx, t, start.Add(plan.duration))
	// At least two rotations on each side while the load ran: if the
	// certificates' jitter left one short, keep the load on for at most one
	// more TTL.
	extra := time.NewTimer(plan.ttl)
	defer extra.Stop()
	for {
		pn, pch := provCerts.rotations()
		cn, cch := consCerts.rotations()
		if pn-provStart >= 2 && cn-consStart >= 2 {
			break
		}
		select {
		case <-pch:
		case <-cch:
		case <-extra.C:
			t.Fatalf("rotations during the load: provider %d, consumer %d; want at least 2 each with %v certificates", pn-provStart, cn-consStart, plan.ttl)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	stopLoad()
	wg.Wait()
	elapsed := time.Since(start)
	provN, _ := provCerts.rotations()
	consN, _ := consCerts.rotations()
	t.Logf("%d calls through the reference in %v (%.0f/s) and %d new connections, %d and %d failed; rotations during the load: provider %d, consumer %d",
		calls.ok.Load()+calls.failed.Load(), elapsed.Round(time.Second), float64(calls.ok.Load()+calls.failed.Load())/elapsed.Seconds(),
		fresh.ok.Load()+fresh.failed.Load(), calls.failed.Load(), fresh.failed.Load(), provN-provStart, consN-consStart)
	if n := calls.failed.Load() + fresh.failed.Load(); n != 0 {
		t.Errorf("%d failed calls; first: %v %v", n, calls.errs, fresh.errs)
	}
	if calls.ok.Load() == 0 || fresh.ok.Load() == 0 {
		t.Fatal("no successful call")
	}

	// Every certificate the provider presented to a new connection was
	// one istiod issued it, and more than the first one was presented.
	presented := 0
	serverSerials.Range(func(_, v any) bool {
		if provCerts.index(v.(*big.Int)) < 0 {
			t.Errorf("the provider presented certificate %v, which its Source never used", v)
		}
		presented++
		return true
	})
	if presented < 3 {
		t.Errorf("new connections saw %d provider certificates, want at least 3 (the first and two rotations)", presented)
	}

	// After the rotations, a new connection presents the current
	// certificates on both sides (tried again if a rotation crosses it).
	for range 3 {
		pn, _ := provCerts.rotations()
		cn, _ := consCerts.rotations()
		name, served, err := dialFresh()
		if err != nil {
			t.Fatalf("new connection after the soak: %v", err)
		}
		pa, _ := provCerts.rotations()
		ca, _ := consCerts.rotations()
		if pa != pn || ca != cn {
			continue
		}
		if i := provCerts.index(served); i != pn || i < 2 {
			t.Errorf("the provider presented its certificate #%d, want the current #%d (after at least 2 rotations)", i, pn)
		}
		if i := consCerts.index(seen.get(name)); i != cn || i < 2 {
			t.Errorf("the consumer presented its certificate #%d, want the current #%d (after at least 2 rotations)", i, cn)
		}
		return
	}
	t.Fatal("a rotation crossed each of 3 checks of the current certificates")
}

// every runs f every period in a goroutine of wg until ctx ends.
func every(ctx context.Context, wg *sync.WaitGroup, period time.Duration, f func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				f()
			}
		}
	}()
}

func greetNamed(ctx context.Context, c greettriple.GreetServiceClient, name string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := c.Greet(cctx, &greet.GreetRequest{Name: name})
	return err
}

// waitUntil waits for the moment at, or fails when ctx ends first.
func waitUntil(ctx context.Context, t *testing.T, at time.Time) {
	t.Helper()
	tm := time.NewTimer(time.Until(at))
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}
