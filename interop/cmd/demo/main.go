// Command demo runs Shoal's main job (`make demo`): a real istiod, Go and Java
// providers, a Shoal consumer calling by interface name, and a live traffic
// shift through VirtualService applies. See package demo for the plan.
//
//	go run ./interop/cmd/demo [-phase 4s] [-rate 200]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/shoalmesh/shoal/interop/demo"
)

func main() {
	phase := flag.Duration("phase", 4*time.Second, "how long each traffic split holds")
	rate := flag.Int("rate", 200, "consumer calls per second")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	res, err := demo.Run(ctx, demo.Options{Out: os.Stdout, RepoRoot: root, Phase: *phase, Rate: *rate})
	if err == nil && res.Failed > 0 {
		err = fmt.Errorf("%w: %d of %d; first: %s", demo.ErrFailedCalls, res.Failed, res.Calls, res.FirstError)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	fmt.Printf("\nNo sidecar, no failed call: %d calls followed %d traffic shifts.\n", res.Calls, len(res.Phases)-1)
}

// repoRoot walks up from the working directory to the directory holding
// go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("demo: run it inside the Shoal repository (no go.work found above the working directory)")
}
