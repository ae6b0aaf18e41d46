// Command shoal scaffolds Shoal applications, calls and inspects services,
// shows what istiod knows and runs a local control plane for development.
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
