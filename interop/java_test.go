package interop

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/interop/peer"
	"github.com/shoalmesh/shoal/interop/peer/grpcgo"
	"github.com/shoalmesh/shoal/interop/peer/java"
	"github.com/shoalmesh/shoal/interop/peer/shoal"
)

// TestMatrixJava runs the cases between Java Dubbo 3.3.6 (samples/java, real
// JVMs on loopback) and Shoal and grpc-go, both ways.
func TestMatrixJava(t *testing.T) {
	jar := javaJar(t)
	all, err := cases.Default()
	if err != nil {
		t.Fatal(err)
	}
	k := loadKnown(t)
	jc, js := java.Client{Jar: jar}, sharedJavaProvider(t, jar)
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

// javaJar skips under -short and returns the Java samples' jar.
func javaJar(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts JVMs running Apache Dubbo 3.3.6; run without -short (make test)")
	}
	root, _ := filepath.Abs("..")
	jar, err := java.Jar(root)
	if err != nil {
		t.Fatal(err)
	}
	return jar
}

// javaProvider is the Java provider (java.Server) the tests of this package
// share, so that a run pays its JVM start once: it serves no state that one
// test could leave behind for another. stopJavaProvider ends it after the
// tests.
var javaProvider struct {
	once sync.Once
	addr string
	stop func()
	err  error
}

// sharedJavaProvider starts the shared Java provider on first use and
// returns it as a peer.Server whose Start returns its address.
func sharedJavaProvider(t *testing.T, jar string) peer.Server {
	t.Helper()
	javaProvider.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		javaProvider.addr, javaProvider.stop, javaProvider.err = java.Server{Jar: jar}.Start(ctx)
	})
	if javaProvider.err != nil {
		t.Fatalf("start the shared Java provider: %v", javaProvider.err)
	}
	return running{Server: java.Server{Jar: jar}, addr: javaProvider.addr}
}

func stopJavaProvider() {
	if javaProvider.stop != nil {
		javaProvider.stop()
	}
}

// running is a server that is already running at addr: Start returns addr
// and a stop that leaves it running.
type running struct {
	peer.Server
	addr string
}

func (r running) Start(context.Context) (string, func(), error) { return r.addr, func() {}, nil }
