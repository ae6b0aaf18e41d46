package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	registryistio "github.com/shoalmesh/shoal/registry-istio"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// meshApp is the program "meshapp" of the scripts: a Shoal application, as
// the consumer of `shoal new` is one, with a reference to the interface
// named by its first argument, found through registry-istio and routed by
// router-mesh (SHOAL_REGISTRIES_0_KIND=istio, SHOAL_REFERENCES_0_ROUTER=mesh,
// istiod at SHOAL_XDS_ADDRESS). It prints "started" once the app has
// started and then runs until SIGINT or SIGTERM; it makes no call.
func meshApp() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: meshapp <interface>")
		os.Exit(2)
	}
	if err := runMeshApp(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "meshapp:", err)
		os.Exit(1)
	}
}

func runMeshApp(iface string) error {
	registry.Default.Register(registryistio.Builder())
	router.DefaultEngines.Register(routermesh.Builder())
	cfg, err := config.Load(
		config.WithApplicationName("meshapp"),
		config.WithReference(config.Reference{Interface: iface}),
	)
	if err != nil {
		return err
	}
	a, err := app.New(cfg, app.WithTransport(tri.NewTransport()))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		return err
	}
	defer a.Stop(context.Background()) //nolint:errcheck // best effort on exit
	if _, err := a.Reference(iface); err != nil {
		return err
	}
	fmt.Println("started")
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-sig.Done()
	return nil
}
