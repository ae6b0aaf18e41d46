package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/shoalmesh/shoal/localmesh/controlplane"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("shoal-controlplane", flag.ContinueOnError)
	dir := fl.String("dir", controlplane.DefaultDir(), "output directory (binaries under bin/)")
	check := fl.Bool("check", false, "list what is missing or out of date and exit 1 if anything is; build nothing")
	write := fl.String("write-modules", "", "write each pinned module to `DIR`/NAME/{go.mod,go.sum} and exit")
	tidy := fl.Bool("tidy-diff", false, "run go mod tidy -diff on each pinned module; exit 1 if one is not tidy")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	if *write != "" {
		return writeModules(*write)
	}
	if *tidy {
		return tidyDiff()
	}
	b := &controlplane.Builder{Dir: *dir, SkipIstiod: os.Getenv("SHOAL_IMAGES") == "public", Progress: os.Stderr}
	if *check {
		stale, err := b.Stale()
		if err != nil {
			return err
		}
		if len(stale) > 0 {
			return fmt.Errorf("not built or out of date in %s: %s", *dir, strings.Join(stale, ", "))
		}
		fmt.Printf("up to date in %s\n", *dir)
		return nil
	}
	if b.SkipIstiod {
		fmt.Fprintln(os.Stderr, "controlplane: SHOAL_IMAGES=public: istiod runs from the istio/pilot image, pilot-discovery is not built")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return b.Build(ctx)
}

func writeModules(dir string) error {
	for _, name := range controlplane.ModuleNames() {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
		if err := controlplane.WriteModule(d, name); err != nil {
			return err
		}
	}
	return nil
}

// tidyDiff runs go mod tidy -diff on a copy of each pinned module.
func tidyDiff() error {
	dir, err := os.MkdirTemp("", "shoal-controlplane-tidy-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := writeModules(dir); err != nil {
		return err
	}
	var bad []string
	for _, name := range controlplane.ModuleNames() {
		cmd := exec.Command("go", "mod", "tidy", "-diff")
		cmd.Dir = filepath.Join(dir, name)
		cmd.Env = append(os.Environ(), "GOWORK=off")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("pinned modules not tidy: %s; write them out with -write-modules DIR, run go mod tidy there, and copy go.mod and go.sum back to localmesh/controlplane/modules/NAME.go.mod and NAME.go.sum",
			strings.Join(bad, ", "))
	}
	return nil
}
