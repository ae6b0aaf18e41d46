// Command dubbogo-peer is the dubbo-go side of Shoal's interop suite. It
// speaks the suite's subprocess protocol (see package driver):
//
//	dubbogo-peer server -port P
//	    serves greet.GreetService with dubbo-go v3.3.2's Triple server (which
//	    answers both its gRPC and its triple flavour) on 127.0.0.1:P, plain and
//	    under group g1 / version 2.0.0; prints READY; exits when stdin closes.
//	dubbogo-peer client -flavour grpc|triple|legacy -target HOST:PORT
//	    runs the cases read from stdin and prints one outcome per line:
//	    grpc    dubbo-go v3.3.2's client (client.Client, gRPC over HTTP/2)
//	    triple  dubbo-go v3.3.2's triple flavour (triple_protocol.WithTriple)
//	    legacy  github.com/dubbogo/triple v1.2.2-rc4 with dubbo-go 3.0 stubs
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	_ "dubbo.apache.org/dubbo-go/v3/imports" // dubbo-go's extensions (cluster, filters, protocols), as its users import them

	"github.com/shoalmesh/shoal/interop/dubbogo/driver"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	out, err := driver.ProtocolOutput()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dubbogo-peer:", err)
		os.Exit(1)
	}
	switch os.Args[1] {
	case "server":
		fs := flag.NewFlagSet("server", flag.ExitOnError)
		port := fs.Int("port", 0, "loopback port to serve on")
		_ = fs.Parse(os.Args[2:])
		if *port == 0 {
			usage()
		}
		err = serve(*port, out)
	case "client":
		fs := flag.NewFlagSet("client", flag.ExitOnError)
		flavour := fs.String("flavour", "grpc", "grpc, triple or legacy")
		target := fs.String("target", "", "host:port of the server (loopback)")
		_ = fs.Parse(os.Args[2:])
		if *target == "" {
			usage()
		}
		err = runClient(*flavour, *target, os.Stdin, out)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dubbogo-peer:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dubbogo-peer server -port P | client -flavour grpc|triple|legacy -target HOST:PORT")
	os.Exit(2)
}

func runClient(flavour, target string, in io.Reader, out io.Writer) error {
	switch flavour {
	case "grpc", "triple":
		c, err := newClient(flavour, target)
		if err != nil {
			return err
		}
		return c.run(in, out)
	case "legacy":
		return runLegacy(target, in, out)
	default:
		return fmt.Errorf("unknown flavour %q: use grpc, triple or legacy", flavour)
	}
}
