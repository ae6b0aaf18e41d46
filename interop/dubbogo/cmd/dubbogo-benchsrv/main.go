// Command dubbogo-benchsrv is bench's benchsrv for dubbo-go v3.3.2: it serves
// greet.GreetService/Greet, prints "READY <addr>" and runs until SIGTERM,
// SIGINT or its standard input closes. Flags as benchsrv's.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoalmesh/shoal/interop/dubbogo/bench"
	"github.com/shoalmesh/shoal/interop/dubbogo/driver"
)

func main() {
	name := flag.String("impl", "dubbo-go", "implementation to serve (only dubbo-go)")
	addr := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
	watchStdin := flag.Bool("stdin", true, "exit when standard input closes (the parent died)")
	flag.Parse()
	out, err := driver.ProtocolOutput()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dubbogo-benchsrv:", err)
		os.Exit(1)
	}
	if *name != "dubbo-go" {
		fmt.Fprintf(os.Stderr, "dubbogo-benchsrv: unknown implementation %q; known: dubbo-go\n", *name)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	err = bench.Serve(ctx, *addr, func(bound string) { fmt.Fprintf(out, "READY %s\n", bound) })
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "dubbogo-benchsrv:", err)
		os.Exit(1)
	}
}
