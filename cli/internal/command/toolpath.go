package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// goBin is where `go install` puts programs: GOBIN, else GOPATH/bin. It is
// empty when there is no go command.
func goBin(ctx context.Context) string {
	if _, err := exec.LookPath("go"); err != nil {
		return ""
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
		return strings.TrimSpace(lines[0])
	}
	if len(lines) > 1 {
		if gp := filepath.SplitList(strings.TrimSpace(lines[1])); len(gp) > 0 && gp[0] != "" {
			return filepath.Join(gp[0], "bin")
		}
	}
	return ""
}

// toolFinder looks programs up in PATH and then in the go install
// directory, which is often not in PATH.
type toolFinder struct {
	gobin string
}

func newToolFinder(ctx context.Context) *toolFinder {
	return &toolFinder{gobin: goBin(ctx)}
}

// find returns the path of the program, or an exit-69 error that says how
// to get it.
func (t *toolFinder) find(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if t.gobin != "" {
		p := filepath.Join(t.gobin, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &exitError{code: ExitMissingTool, err: fmt.Errorf("%s is not installed (not in PATH or %s): %s", name, orNone(t.gobin), howToGet(name))}
}

// env returns os.Environ with the go install directory added to PATH, so
// that protoc and buf find the plugins there.
func (t *toolFinder) env() []string {
	env := os.Environ()
	if t.gobin == "" {
		return env
	}
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			env[i] = "PATH=" + v + string(os.PathListSeparator) + t.gobin
			return env
		}
	}
	return append(env, "PATH="+t.gobin)
}

func orNone(dir string) string {
	if dir == "" {
		return "no go install directory: Go is not installed"
	}
	return dir
}

func howToGet(name string) string {
	switch name {
	case "protoc":
		return "install it with 'apt-get install protobuf-compiler' (Debian, Ubuntu) or 'brew install protobuf' (macOS), or add a buf.gen.yaml and use buf ('shoal tools install buf')"
	case "protoc-gen-go", "protoc-gen-go-triple", "buf":
		return "run 'shoal tools install " + name + "'"
	case "go":
		return "install Go 1.26 or newer from go.dev/dl"
	case "java", "mvn":
		return "install a JDK 17 and Maven ('apt-get install openjdk-17-jdk-headless maven'); only the Java Dubbo interop needs them"
	case "podman", "docker":
		return "install podman ('apt-get install podman runc') or Docker"
	}
	return "install it"
}

// runTool runs a program with its output going to the command's stderr.
func runTool(ctx context.Context, e *env, t *toolFinder, dir, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.Env = t.env()
	cmd.Stdout, cmd.Stderr = e.stderr, e.stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("%s %s failed: %w", filepath.Base(prog), strings.Join(args, " "), err)
		}
		return err
	}
	return nil
}
