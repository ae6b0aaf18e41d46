package interop

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/interop/peer"
	"github.com/shoalmesh/shoal/interop/peer/grpcgo"
	"github.com/shoalmesh/shoal/interop/peer/shoal"
	"github.com/shoalmesh/shoal/triple"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(stopAfter{m})
}

// stopAfter runs the tests, then stops the processes they share.
type stopAfter struct{ m *testing.M }

func (s stopAfter) Run() int {
	code := s.m.Run()
	stopJavaProvider()
	return code
}

// Peers in the in-process matrix. Peers that need a JVM or a control plane
// run in their own tests.
var (
	clients = []peer.Client{grpcgo.Client{}, shoal.Client{}}
	servers = []peer.Server{grpcgo.Server{}, shoal.Server{}}
)

// TestMatrix runs every case from every client against every server that
// supports what the case needs, and compares the result with
// cases/known_failures.txt.
func TestMatrix(t *testing.T) {
	all, err := cases.Default()
	if err != nil {
		t.Fatal(err)
	}
	k := loadKnown(t)
	for _, srv := range servers {
		for _, cli := range clients {
			t.Run(cli.Name()+"->"+srv.Name(), func(t *testing.T) {
				RunPair(t, cli, srv, all, k)
			})
		}
	}
	// Shoal's triple-flavour client against its server (grpc-go has no
	// triple flavour; dubbo-go's server is in TestMatrixDubboGo).
	tc := shoal.Client{Protocol: triple.ProtocolTriple}
	t.Run(tc.Name()+"->shoal", func(t *testing.T) { RunPair(t, tc, shoal.Server{}, all, k) })
}

// known lists the expected failures and the flaky cases.
type known struct{ failures, flaky cases.KnownFailures }

func loadKnown(t *testing.T) known {
	t.Helper()
	failures, err := cases.LoadKnownFailures("cases/known_failures.txt")
	if err != nil {
		t.Fatal(err)
	}
	flaky, err := cases.LoadKnownFailures("cases/known_flaky.txt")
	if err != nil {
		t.Fatal(err)
	}
	return known{failures: failures, flaky: flaky}
}

// RunPair runs cs from cli against srv.
func RunPair(t *testing.T, cli peer.Client, srv peer.Server, cs []cases.Case, k known) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr, stop, err := srv.Start(ctx)
	if err != nil {
		t.Fatalf("start %s: %v", srv.Name(), err)
	}
	defer stop()

	var run []cases.Case
	for _, c := range cs {
		supported := true
		for _, n := range c.Needs {
			supported = supported && srv.Supports(n) && peer.Supports(cli, n)
		}
		if l, ok := cli.(peer.Limited); ok && supported {
			if can, why := l.Handles(c); !can {
				t.Run(c.Name, func(t *testing.T) { t.Skipf("%s cannot make this call: %s", cli.Name(), why) })
				continue
			}
		}
		if supported {
			run = append(run, c)
		}
	}
	outcomes, err := cli.Run(ctx, addr, run)
	if err != nil {
		t.Fatalf("%s client: %v", cli.Name(), err)
	}
	if len(outcomes) != len(run) {
		t.Fatalf("%s client returned %d outcomes for %d cases", cli.Name(), len(outcomes), len(run))
	}
	for i, c := range run {
		t.Run(c.Name, func(t *testing.T) {
			err := cases.Check(c, outcomes[i])
			key := cases.Key(cli.Name(), srv.Name(), c.Name)
			why, isKnown := k.failures[key]
			if flakyWhy, isFlaky := k.flaky[key]; isFlaky {
				if err != nil {
					t.Skipf("known flaky (%s); failed this time: %v", flakyWhy, err)
				}
				return
			}
			switch {
			case err != nil && isKnown:
				t.Skipf("known failure (%s): %v", why, err)
			case err != nil:
				t.Error(err)
			case isKnown:
				t.Errorf("listed in known_failures.txt (%s) but passes now: remove the line", why)
			}
		})
	}
}
