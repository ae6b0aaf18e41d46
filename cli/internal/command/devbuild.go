package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/localmesh/controlplane"
)

// controlPlaneBuilder is the builder of the binaries localmesh.Start will
// look for: its directory, and pilot-discovery unless SHOAL_IMAGES=public.
func controlPlaneBuilder(e *env) (*controlplane.Builder, error) {
	source := localmesh.LocalImages
	if v := os.Getenv(localmesh.EnvImages); v != "" {
		s, err := localmesh.ParseImageSource(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %w", localmesh.EnvImages, v, err)
		}
		source = s
	}
	return &controlplane.Builder{
		Dir:        localmesh.DefaultBinDir(),
		SkipIstiod: source == localmesh.PublicImages,
		Progress:   e.stderr,
	}, nil
}

// buildControlPlane builds what is missing or out of date, with progress on
// stderr; without a go command it exits 69 (ExitMissingTool).
func buildControlPlane(ctx context.Context, e *env) error {
	b, err := controlPlaneBuilder(e)
	if err != nil {
		return err
	}
	if err := b.Build(ctx); err != nil {
		if errors.Is(err, controlplane.ErrNoGo) {
			return &exitError{code: ExitMissingTool, err: err}
		}
		return err
	}
	return nil
}

func newDevBuildCmd(e *env) *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build the control-plane binaries without starting them",
		Long: `Build etcd, kube-apiserver, kube-controller-manager and istiod
(pilot-discovery; not with SHOAL_IMAGES=public) and copy Istio's CRDs into
$SHOAL_CONTROLPLANE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/shoal/controlplane,
from the versions pinned inside this shoal binary, as 'shoal dev up' does
before it starts them. Only what is missing or pinned differently is built;
that needs the go command (Go 1.26 or newer) and the Go module proxy.
With --check nothing is built: it lists what is missing or out of date and
exits 1 if anything is.`,
		Example: `  shoal dev build
  shoal dev build --check`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := controlPlaneBuilder(e)
			if err != nil {
				return err
			}
			if check {
				stale, err := b.Stale()
				if err != nil {
					return err
				}
				if len(stale) > 0 {
					return fmt.Errorf("not built or out of date in %s: %s; run 'shoal dev build'", b.Dir, strings.Join(stale, ", "))
				}
			} else if err := buildControlPlane(cmd.Context(), e); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "control plane up to date in %s\n", b.Dir)
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "only list what is missing or out of date (exit 1 if anything is)")
	return cmd
}
