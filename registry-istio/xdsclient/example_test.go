package xdsclient_test

import (
	"fmt"
	"log"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

// exampleTB lets a runnable example start an xdstest server.
type exampleTB struct{ cleanups []func() }

func (*exampleTB) Helper()                           {}
func (*exampleTB) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }
func (t *exampleTB) Cleanup(f func())                { t.cleanups = append(t.cleanups, f) }

func (t *exampleTB) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// Watch the endpoints of a service, as istiod would publish them.
func ExampleClient_WatchEndpoints() {
	tb := &exampleTB{}
	defer tb.done()
	srv := xdstest.NewServer(tb) // an in-process stand-in for istiod
	srv.Set(xdstest.Service("greeter.default.svc.cluster.local", 20000,
		xdstest.Endpoint{IP: "10.1.0.1", Port: 20000, Locality: xdstest.Locality{Region: "eu", Zone: "eu-1"}}))

	cfg := &bootstrap.Config{
		ServerURI: srv.Address(),
		Node:      bootstrap.Identity{PodName: "consumer-0", Namespace: "default", IPs: []string{"10.0.0.7"}}.Node(),
	}
	c, err := xdsclient.New(cfg, xdsclient.WithLogger(quietLogger()))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	got := make(chan *xdsresource.Endpoints, 1)
	cancel := c.WatchEndpoints("outbound|20000||greeter.default.svc.cluster.local",
		xdsclient.WatcherFuncs[*xdsresource.Endpoints]{OnChanged: func(e *xdsresource.Endpoints) { got <- e }})
	defer cancel()
	e := <-got
	l := e.Localities[0]
	fmt.Println(l.Locality, l.Endpoints[0].Address, l.Endpoints[0].Health)
	// Output: eu/eu-1/ 10.1.0.1:20000 HEALTHY
}
