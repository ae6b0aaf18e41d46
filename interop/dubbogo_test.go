package interop

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/interop/peer"
	"github.com/shoalmesh/shoal/interop/peer/dubbogo"
	"github.com/shoalmesh/shoal/interop/peer/grpcgo"
	"github.com/shoalmesh/shoal/interop/peer/shoal"
	"github.com/shoalmesh/shoal/triple"
)

// TestMatrixDubboGo runs the cases between dubbo-go v3.3.2 (its server, its
// gRPC-flavour and triple-flavour clients), the legacy dubbogo/triple client
// and Shoal (its gRPC client and its triple-flavour client), both ways. The
// triple flavour is unary only on both sides, so its stream cases are
// skipped with the reason. The peers are the dubbogo-peer process built from the
// interop/dubbogo module outside the workspace (cached in .cache/bin/dubbogo).
func TestMatrixDubboGo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dubbo-go peers (a cold build takes minutes); run without -short (make test)")
	}
	root, _ := filepath.Abs("..")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := dubbogo.Build(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	all, err := cases.Default()
	if err != nil {
		t.Fatal(err)
	}
	k := loadKnown(t)
	ds := dubbogo.Server{Bin: bin}
	grpcFlavour := dubbogo.Client{Bin: bin, Flavour: dubbogo.GRPC}
	tripleFlavour := dubbogo.Client{Bin: bin, Flavour: dubbogo.Triple}
	legacy := dubbogo.Client{Bin: bin, Flavour: dubbogo.Legacy}
	pairs := []struct {
		c peer.Client
		s peer.Server
	}{
		// Shoal against dubbo-go, both ways, both flavours.
		{shoal.Client{}, ds},
		{shoal.Client{Protocol: triple.ProtocolTriple}, ds},
		{grpcFlavour, shoal.Server{}},
		{tripleFlavour, shoal.Server{}},
		// The legacy client of dubbo-go 3.0 users.
		{legacy, shoal.Server{}},
		// References: the dubbo-go peer against itself and against grpc-go,
		// so that a failure above can be told from a broken peer.
		{grpcFlavour, ds},
		{tripleFlavour, ds},
		{legacy, ds},
		{grpcgo.Client{}, ds},
	}
	for _, p := range pairs {
		t.Run(p.c.Name()+"->"+p.s.Name(), func(t *testing.T) {
			RunPair(t, p.c, p.s, all, k)
		})
	}
}
