// Command benchsrv serves greet.GreetService/Greet with one of the
// benchmark's implementations. It prints "READY <addr>" once it accepts calls
// and runs until SIGTERM, SIGINT or its standard input closes.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoalmesh/shoal/bench/impl"
)

func main() {
	name := flag.String("impl", "grpc-go", "implementation to serve")
	addr := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
	watchStdin := flag.Bool("stdin", true, "exit when standard input closes (the parent died)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()

	im, err := impl.Lookup(*name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchsrv:", err)
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
	stopProfile, err := impl.StartCPUProfile(*cpuProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchsrv:", err)
		os.Exit(2)
	}
	err = im.Serve(ctx, *addr, func(bound string) { fmt.Printf("READY %s\n", bound) })
	if perr := stopProfile(); perr != nil {
		fmt.Fprintln(os.Stderr, "benchsrv:", perr)
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "benchsrv:", err)
		os.Exit(1)
	}
}
