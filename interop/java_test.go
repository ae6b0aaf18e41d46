package interop

import (
	"path/filepath"
	"testing"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/interop/peer"
	"github.com/shoalmesh/shoal/interop/peer/grpcgo"
	"github.com/shoalmesh/shoal/interop/peer/java"
	"github.com/shoalmesh/shoal/interop/peer/shoal"
)

// TestMatrixJava runs the cases between Java Dubbo 3.3.6 (samples/java, real
// JVMs on loopback) and Shoal and grpc-go, both ways.
func TestMatrixJava(t *testing.T) {
	if testing.Short() {
		t.Skip("starts JVMs running Apache Dubbo 3.3.6; run without -short (make test)")
	}
	root, _ := filepath.Abs("..")
	jar, err := java.Jar(root)
	if err != nil {
		t.Fatal(err)
	}
	all, err := cases.Default()
	if err != nil {
		t.Fatal(err)
	}
	k := loadKnown(t)
	jc, js := java.Client{Jar: jar}, java.Server{Jar: jar}
	pairs := []struct {
		c peer.Client
		s peer.Server
	}{
		{shoal.Client{}, js},
		{jc, shoal.Server{}},
		{grpcgo.Client{}, js},
		{jc, grpcgo.Server{}},
	}
	for _, p := range pairs {
		t.Run(p.c.Name()+"->"+p.s.Name(), func(t *testing.T) {
			RunPair(t, p.c, p.s, all, k)
		})
	}
}
