package command

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

type versionInfo struct {
	Version   string          `json:"version"`
	GoVersion string          `json:"goVersion"`
	Modules   []moduleVersion `json:"modules"`
}

type moduleVersion struct {
	Path    string `json:"path"`
	Version string `json:"version"`
}

func newVersionCmd(e *env) *cobra.Command {
	var output string
	var all bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of shoal and of the modules it was built with",
		Long: `Print the version of shoal, the Go version that built it, and the versions of
the Shoal modules (with --all: of every module) compiled into the binary, as
recorded by the Go toolchain.`,
		Example: `  shoal version
  shoal version --all -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			info, ok := debug.ReadBuildInfo()
			if !ok {
				return errors.New("no build information in this binary; build it with module support (go build or go install)")
			}
			v := versionInfo{Version: modVersion(info.Main), GoVersion: info.GoVersion, Modules: []moduleVersion{}}
			for _, d := range info.Deps {
				if all || strings.HasPrefix(d.Path, "github.com/shoalmesh/shoal/") {
					v.Modules = append(v.Modules, moduleVersion{Path: d.Path, Version: modVersion(*d)})
				}
			}
			return printData(e.stdout, output, v, func(w io.Writer) error {
				fmt.Fprintf(w, "shoal %s (%s)\n", v.Version, v.GoVersion)
				for _, m := range v.Modules {
					fmt.Fprintf(w, "  %s %s\n", m.Path, m.Version)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list every module compiled in, not only Shoal's")
	addOutputFlag(cmd, &output)
	return cmd
}

func modVersion(m debug.Module) string {
	if m.Replace != nil && m.Replace.Version != "" {
		m = *m.Replace
	}
	if m.Version == "" {
		return "(devel)"
	}
	return m.Version
}
