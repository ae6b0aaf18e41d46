package command

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/semver"
)

// Pinned versions of the code generators. protoc-gen-go matches the
// protobuf runtime of the Shoal modules; buf matches tools/buf.
const (
	protocGenGoVersion = "v1.36.12"
	bufVersion         = "v1.75.0"
	triplePlugin       = "github.com/shoalmesh/shoal/triple/cmd/protoc-gen-go-triple"
)

// tool is one installable program.
type tool struct {
	Name    string `json:"name"`
	Package string `json:"package"`
	Version string `json:"version"`
	// Dir, when set, builds the program from a local Shoal checkout instead
	// of a released version.
	Dir string `json:"dir,omitempty"`
	// err says why the tool cannot be installed as things stand.
	err error
}

func newToolsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "Install the pinned code generators",
		Example: `  shoal tools list
  shoal tools install`,
		Args: exactArgs(0, "a subcommand (install or list)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("missing subcommand: run 'shoal tools install' or 'shoal tools list'")
		},
	}
	cmd.AddCommand(newToolsInstallCmd(e), newToolsListCmd(e))
	return cmd
}

func newToolsListCmd(e *env) *cobra.Command {
	var output, shoalDir string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the pinned tools and where each would come from",
		Example: `  shoal tools list
  shoal tools list --shoal-dir ~/src/shoal -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			tools, err := pinnedTools(shoalDir)
			if err != nil {
				return err
			}
			return printData(e.stdout, output, tools, func(w io.Writer) error {
				for _, t := range tools {
					fmt.Fprintf(w, "%-22s %s\n", t.Name, t.source())
				}
				return nil
			})
		},
	}
	addShoalDirFlag(cmd, &shoalDir)
	addOutputFlag(cmd, &output)
	return cmd
}

func newToolsInstallCmd(e *env) *cobra.Command {
	var shoalDir string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "install [tool...]",
		Short: "Install protoc-gen-go, protoc-gen-go-triple and buf with go install",
		Long: `Install the code generators that 'shoal gen' runs, at the versions pinned in
this shoal, with 'go install' into GOBIN (default GOPATH/bin): protoc-gen-go
` + protocGenGoVersion + `, protoc-gen-go-triple at the triple version shoal was
built with, and buf ` + bufVersion + `. Name tools to install only those.

A development build of shoal has no released triple version: give
--shoal-dir (or SHOAL_DIR) with a Shoal checkout to build the plugin from it.`,
		Example: `  shoal tools install
  shoal tools install protoc-gen-go protoc-gen-go-triple --shoal-dir ~/src/shoal
  shoal tools install --dry-run`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tools, err := pinnedTools(shoalDir)
			if err != nil {
				return err
			}
			var pick []tool
			for _, a := range args {
				i := slices.IndexFunc(tools, func(t tool) bool { return t.Name == a })
				if i < 0 {
					return usageErrorf("unknown tool %q: choose from protoc-gen-go, protoc-gen-go-triple, buf", a)
				}
				pick = append(pick, tools[i])
			}
			if len(pick) == 0 {
				pick = tools
			}
			return installTools(cmd.Context(), e, pick, dryRun)
		},
	}
	addShoalDirFlag(cmd, &shoalDir)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the go install commands instead of running them")
	return cmd
}

func addShoalDirFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVar(dst, "shoal-dir", os.Getenv("SHOAL_DIR"), "a local Shoal checkout to use instead of released modules (default $SHOAL_DIR)")
}

// pinnedTools returns the tools and where each comes from.
func pinnedTools(shoalDir string) ([]tool, error) {
	triple := tool{Name: "protoc-gen-go-triple", Package: triplePlugin}
	if shoalDir != "" {
		abs, err := checkShoalDir(shoalDir)
		if err != nil {
			return nil, err
		}
		triple.Version, triple.Dir = "(local)", filepath.Join(abs, "triple")
	} else {
		triple.Version = shoalModuleVersion("github.com/shoalmesh/shoal/triple")
		if triple.Version == "" {
			triple.err = usageErrorf("this shoal is a development build with no released triple version: give a Shoal checkout with --shoal-dir or SHOAL_DIR")
		}
	}
	return []tool{
		{Name: "protoc-gen-go", Package: "google.golang.org/protobuf/cmd/protoc-gen-go", Version: protocGenGoVersion},
		triple,
		{Name: "buf", Package: "github.com/bufbuild/buf/cmd/buf", Version: bufVersion},
	}, nil
}

// checkShoalDir makes dir absolute and checks it is a Shoal checkout.
func checkShoalDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(abs, "triple", "go.mod"))
	if err != nil || !strings.Contains(string(b), "module github.com/shoalmesh/shoal/triple") {
		return "", usageErrorf("%s is not a Shoal checkout (no triple/go.mod of github.com/shoalmesh/shoal/triple)", dir)
	}
	return abs, nil
}

// shoalModuleVersion is the released version of a Shoal module compiled
// into this binary, or "" for a development build.
func shoalModuleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range info.Deps {
		if d.Path == path && d.Replace == nil && semver.IsValid(d.Version) && !strings.HasPrefix(d.Version, "v0.0.0-00010101000000") {
			return d.Version
		}
	}
	return ""
}

func (t tool) source() string {
	if t.err != nil {
		return "unknown: needs --shoal-dir or SHOAL_DIR (a development build of shoal)"
	}
	if t.Dir != "" {
		return "built from " + t.Dir
	}
	return t.Package + "@" + t.Version
}

func installTools(ctx context.Context, e *env, tools []tool, dryRun bool) error {
	f := newToolFinder(ctx)
	goCmd, err := f.find("go")
	if err != nil {
		return err
	}
	for _, t := range tools {
		if t.err != nil {
			return fmt.Errorf("%s: %w", t.Name, t.err)
		}
	}
	for _, t := range tools {
		dir, args := "", []string{"install", t.Package + "@" + t.Version}
		if t.Dir != "" {
			dir, args = t.Dir, []string{"install", "./cmd/protoc-gen-go-triple"}
		}
		if dryRun {
			if dir != "" {
				fmt.Fprintf(e.stdout, "(cd %s && go %s)\n", dir, strings.Join(args, " "))
			} else {
				fmt.Fprintf(e.stdout, "go %s\n", strings.Join(args, " "))
			}
			continue
		}
		fmt.Fprintf(e.stderr, "installing %s (%s)\n", t.Name, t.source())
		if err := runTool(ctx, e, f, dir, goCmd, args...); err != nil {
			return fmt.Errorf("install %s: %w", t.Name, err)
		}
	}
	if dryRun {
		return nil
	}
	fmt.Fprintf(e.stdout, "installed %d tool(s) into %s\n", len(tools), orNone(f.gobin))
	if f.gobin != "" && !slices.Contains(filepath.SplitList(os.Getenv("PATH")), f.gobin) {
		fmt.Fprintf(e.stdout, "%s is not in PATH: shoal gen finds the tools there; for protoc and buf on their own, add it to PATH\n", f.gobin)
	}
	return nil
}
