package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Check states of shoal doctor.
const (
	checkOK   = "ok"
	checkWarn = "warn" // missing, but only some work needs it
	checkFail = "fail" // everyday work needs it
)

type checkResult struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

func newDoctorCmd(e *env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine for what Shoal development needs",
		Long: `Check for what Shoal development needs and say how to fix each problem:
Go; protoc (or buf) and the well-known types; the protoc-gen-go and
protoc-gen-go-triple plugins; a podman or Docker API socket (DOCKER_HOST, else
the usual socket paths) for container tests and images; Java and Maven for the
Java Dubbo interop; and istiod at SHOAL_XDS_ADDRESS when it is set.

Exit code 1 when a check fails; warnings (what only some work needs) do not
fail.`,
		Example: `  shoal doctor
  SHOAL_XDS_ADDRESS=127.0.0.1:15010 shoal doctor -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			results := runChecks(cmd.Context())
			err := printData(e.stdout, output, results, func(w io.Writer) error {
				for _, r := range results {
					fmt.Fprintf(w, "%-5s %-22s %s\n", r.Status, r.Name, r.Detail)
					if r.Fix != "" {
						fmt.Fprintf(w, "      %-22s fix: %s\n", "", r.Fix)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			var failed []string
			for _, r := range results {
				if r.Status == checkFail {
					failed = append(failed, r.Name)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d check(s) failed: %s", len(failed), strings.Join(failed, ", "))
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func runChecks(ctx context.Context) []checkResult {
	t := newToolFinder(ctx)
	var rs []checkResult

	// Go.
	if p, err := t.find("go"); err != nil {
		rs = append(rs, missing("go", checkFail, err))
	} else {
		rs = append(rs, checkResult{Name: "go", Status: checkOK, Detail: firstLine(ctx, p, "version")})
	}

	// protoc or buf, and the well-known types.
	protoc, perr := t.find("protoc")
	buf, berr := t.find("buf")
	switch {
	case perr == nil:
		detail := firstLine(ctx, protoc, "--version")
		if inc := wktInclude(protoc); inc != "" {
			detail += "; well-known types in " + inc
		} else {
			detail += "; well-known types: none installed, shoal gen uses its bundled copies"
		}
		rs = append(rs, checkResult{Name: "protoc", Status: checkOK, Detail: detail})
	case berr == nil:
		rs = append(rs, checkResult{Name: "protoc", Status: checkWarn, Detail: "not installed; buf is, so projects with a buf.gen.yaml generate", Fix: howToGet("protoc")})
	default:
		rs = append(rs, missing("protoc", checkFail, perr))
	}
	if berr == nil {
		rs = append(rs, checkResult{Name: "buf", Status: checkOK, Detail: "buf " + firstLine(ctx, buf, "--version")})
	} else {
		rs = append(rs, missing("buf", checkWarn, berr))
	}

	// Plugins.
	for _, p := range []string{"protoc-gen-go", "protoc-gen-go-triple"} {
		if path, err := t.find(p); err != nil {
			rs = append(rs, missing(p, checkFail, err))
		} else {
			rs = append(rs, checkResult{Name: p, Status: checkOK, Detail: path})
		}
	}

	rs = append(rs, checkContainerSocket())

	// Java and Maven: only the Java Dubbo interop needs them.
	for _, p := range []string{"java", "mvn"} {
		if path, err := t.find(p); err != nil {
			rs = append(rs, missing(p, checkWarn, err))
		} else {
			rs = append(rs, checkResult{Name: p, Status: checkOK, Detail: path})
		}
	}

	rs = append(rs, checkIstiod(ctx))
	return rs
}

func missing(name, status string, err error) checkResult {
	r := checkResult{Name: name, Status: status, Detail: "not installed", Fix: howToGet(name)}
	var ee *exitError
	if !errors.As(err, &ee) {
		r.Detail = err.Error()
	}
	return r
}

// firstLine runs a program and returns the first line it prints.
func firstLine(ctx context.Context, prog string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s (%s %s failed: %v)", prog, prog, strings.Join(args, " "), err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// checkContainerSocket dials the Docker API socket: DOCKER_HOST, else
// podman's and Docker's usual paths.
func checkContainerSocket() checkResult {
	const fix = "start podman's API service: podman system service --time=0 unix:///run/podman/podman.sock & then export DOCKER_HOST=unix:///run/podman/podman.sock (or start Docker)"
	r := checkResult{Name: "container socket", Status: checkWarn, Fix: fix}
	var cands []string
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		p, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			r.Detail = "DOCKER_HOST=" + h + " is not a unix socket; not checked"
			r.Fix = ""
			return r
		}
		cands = []string{p}
	} else {
		cands = []string{"/run/podman/podman.sock", "/var/run/docker.sock"}
		if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
			cands = append(cands, x+"/podman/podman.sock")
		}
	}
	var problems []string
	for _, p := range cands {
		c, err := net.DialTimeout("unix", p, 2*time.Second)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		_ = c.Close()
		return checkResult{Name: "container socket", Status: checkOK, Detail: "unix://" + p + " accepts connections"}
	}
	r.Detail = "no podman or Docker API socket answers (" + strings.Join(problems, "; ") + "); container tests and images need one"
	return r
}

// checkIstiod dials SHOAL_XDS_ADDRESS when it is set.
func checkIstiod(ctx context.Context) checkResult {
	addr := os.Getenv("SHOAL_XDS_ADDRESS")
	if addr == "" {
		return checkResult{Name: "istiod", Status: checkWarn, Detail: "SHOAL_XDS_ADDRESS is not set; only apps in the mesh need istiod",
			Fix: "to use the mesh, run istiod and export SHOAL_XDS_ADDRESS=host:15010"}
	}
	d := net.Dialer{Timeout: 3 * time.Second}
	c, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(addr, "dns:///"))
	if err != nil {
		return checkResult{Name: "istiod", Status: checkFail, Detail: "SHOAL_XDS_ADDRESS=" + addr + " is not reachable: " + err.Error(),
			Fix: "start istiod (its plaintext xDS port is 15010) or correct SHOAL_XDS_ADDRESS"}
	}
	_ = c.Close()
	return checkResult{Name: "istiod", Status: checkOK, Detail: "SHOAL_XDS_ADDRESS=" + addr + " accepts connections"}
}
