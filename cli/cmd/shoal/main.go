// Command shoal creates Shoal applications, generates their code, calls and
// inspects Triple and gRPC services and checks the machine for what Shoal
// development needs.
//
// Run `shoal help` for the list of commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoalmesh/shoal/cli/internal/command"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return command.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
