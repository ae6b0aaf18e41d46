package provider_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/provider"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// recorder is the log the recording fakes below write to, with the time of
// each event and whether the provider reported itself ready at that point.
type recorder struct {
	mu     sync.Mutex
	p      *provider.Provider
	events []string
	at     []time.Time
}

func (r *recorder) add(event string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil && r.p.Ready() {
		event += " (ready)"
	}
	r.events = append(r.events, event)
	r.at = append(r.at, time.Now())
}

func (r *recorder) take() ([]string, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, at := r.events, r.at
	r.events, r.at = nil, nil
	return e, at
}

// recordingServer is a fake provider.Server that only records its calls.
type recordingServer struct {
	rec  *recorder
	addr string
}

func (s *recordingServer) Listen(context.Context) (net.Addr, error) {
	s.rec.add("listen " + s.addr)
	return net.ResolveTCPAddr("tcp", s.addr)
}

func (s *recordingServer) Shutdown(context.Context) error {
	s.rec.add("shutdown " + s.addr)
	return nil
}

// recordingRegistrar is a fake registry.Registrar that only records its
// calls.
type recordingRegistrar struct{ rec *recorder }

func (r *recordingRegistrar) Register(_ context.Context, inst registry.Instance) error {
	r.rec.add("register " + inst.Address)
	return nil
}

func (r *recordingRegistrar) Deregister(_ context.Context, inst registry.Instance) error {
	r.rec.add("deregister " + inst.Address)
	return nil
}

// TestStartAndStopOrder: Start listens on every server before registering
// anything and reports ready (health serving) last; Stop reports unready
// first, then deregisters, waits the drain delay, and shuts the servers
// down last, in reverse order.
func TestStartAndStopOrder(t *testing.T) {
	rec := &recorder{}
	servers := []provider.Server{
		&recordingServer{rec: rec, addr: "127.0.0.1:7001"},
		&recordingServer{rec: rec, addr: "127.0.0.1:7002"},
	}
	const drain = 50 * time.Millisecond
	p, err := provider.New([]provider.Service{{Key: registry.Key{Interface: "greet.GreetService"}}}, servers,
		[]registry.Registrar{&recordingRegistrar{rec: rec}},
		provider.WithDrainDelay(drain), provider.WithLogger(quiet),
		provider.WithServing(func(serving bool) {
			if serving {
				rec.add("serving")
			} else {
				rec.add("not serving")
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	rec.p = p
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	started, _ := rec.take()
	wantStart := []string{
		"listen 127.0.0.1:7001", "listen 127.0.0.1:7002",
		"register 127.0.0.1:7001", "register 127.0.0.1:7002",
		"serving (ready)",
	}
	if !slices.Equal(started, wantStart) {
		t.Errorf("start order:\n got %q\nwant %q", started, wantStart)
	}
	if !p.Ready() {
		t.Error("not ready after Start")
	}

	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped, at := rec.take()
	wantStop := []string{
		"not serving",
		"deregister 127.0.0.1:7002", "deregister 127.0.0.1:7001",
		"shutdown 127.0.0.1:7002", "shutdown 127.0.0.1:7001",
	}
	if !slices.Equal(stopped, wantStop) {
		t.Fatalf("stop order:\n got %q\nwant %q", stopped, wantStop)
	}
	if d := at[3].Sub(at[2]); d < drain {
		t.Errorf("servers shut down %s after the last deregistration, want the %s drain delay between", d, drain)
	}
	if p.Ready() {
		t.Error("ready after Stop")
	}
}
