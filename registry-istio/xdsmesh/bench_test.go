package xdsmesh_test

import (
	"context"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// BenchmarkFirstSnapshot measures the xDS part of "process start to first
// call": from creating a client to holding the first routable snapshot of
// one interface (LDS, RDS, two subset clusters, the default cluster and
// their endpoints, all from an in-process server on loopback).
func BenchmarkFirstSnapshot(b *testing.B) {
	srv := xdstest.NewServer(b)
	const seHost = "greet.greetservice.default.shoal.local"
	srv.Set(xdstest.Split(seHost, 50051,
		xdstest.Subset{Name: "v1", Weight: 80, Endpoints: []xdstest.Endpoint{{IP: "127.0.0.1", Port: 20000}}},
		xdstest.Subset{Name: "v2", Weight: 20, Endpoints: []xdstest.Endpoint{{IP: "127.0.0.2", Port: 20000}}}))
	cfg := &bootstrap.Config{ServerURI: srv.Address(), Node: bootstrap.Identity{PodName: "c", Namespace: "default", IPs: []string{"127.0.0.3"}}.Node()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ResetTimer()
	for range b.N {
		c, err := xdsclient.New(cfg, xdsclient.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		w, err := xdsmesh.NewDiscovery(c, xdsmesh.WithLogger(quiet)).Watch(ctx, registry.Key{Interface: "greet.GreetService"})
		if err != nil {
			b.Fatal(err)
		}
		s, err := w.Next(ctx)
		if err != nil || len(s.Routes()) != 1 {
			b.Fatalf("snapshot %v, %v", s, err)
		}
		b.StopTimer()
		_ = w.Close()
		_ = c.Close()
		b.StartTimer()
	}
}
