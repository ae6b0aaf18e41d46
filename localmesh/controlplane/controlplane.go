package controlplane

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

//go:embed modules
var modules embed.FS

// EnvDir names the environment variable that overrides DefaultDir.
const EnvDir = "SHOAL_CONTROLPLANE_DIR"

// CRDsFile is the file, in the output directory, that holds Istio's CRDs
// (manifests/charts/base/files/crd-all.gen.yaml of the istiod module's
// istio.io/istio).
const CRDsFile = "istio-crds.yaml"

// Component is one binary Builder makes.
type Component struct {
	Binary  string // file name under bin/
	Module  string // the pinned module it is built in: etcd, kube or istiod
	Package string // the main package
	LDFlags string // besides -s -w
}

const kubeLDFlags = "-X k8s.io/component-base/version.gitVersion=v1.36.3" +
	" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36"

// istiodModule is the module of pilot-discovery and of Istio's CRDs.
const istiodModule = "istiod"

var components = []Component{
	{Binary: "etcd", Module: "etcd", Package: "go.etcd.io/etcd/server/v3"},
	{Binary: "kube-apiserver", Module: "kube", Package: "k8s.io/kubernetes/cmd/kube-apiserver", LDFlags: kubeLDFlags},
	{Binary: "kube-controller-manager", Module: "kube", Package: "k8s.io/kubernetes/cmd/kube-controller-manager", LDFlags: kubeLDFlags},
	{Binary: "pilot-discovery", Module: istiodModule, Package: "istio.io/istio/pilot/cmd/pilot-discovery"},
}

// Components returns the binaries Builder makes, in build order. With
// withIstiod false pilot-discovery is left out (istiod then runs from the
// istio/pilot image, localmesh's PublicImages).
func Components(withIstiod bool) []Component {
	if withIstiod {
		return slices.Clone(components)
	}
	return slices.DeleteFunc(slices.Clone(components), func(c Component) bool { return c.Module == istiodModule })
}

// ModuleNames returns the names of the pinned modules.
func ModuleNames() []string { return []string{"etcd", "kube", istiodModule} }

// Module returns the go.mod and go.sum of a pinned module.
func Module(name string) (gomod, gosum []byte, err error) {
	if gomod, err = modules.ReadFile("modules/" + name + ".go.mod"); err != nil {
		return nil, nil, fmt.Errorf("controlplane: no pinned module %q: %w", name, err)
	}
	if gosum, err = modules.ReadFile("modules/" + name + ".go.sum"); err != nil {
		return nil, nil, fmt.Errorf("controlplane: no go.sum for pinned module %q: %w", name, err)
	}
	return gomod, gosum, nil
}

// WriteModule writes a pinned module's go.mod and go.sum into dir.
func WriteModule(dir, name string) error {
	gomod, gosum, err := Module(name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "go.sum"), gosum, 0o600)
}

// Stamp is what selects a module's build: the first 16 hex digits of the
// SHA-256 of its go.mod (go.sum only verifies downloads).
func Stamp(name string) (string, error) {
	gomod, _, err := Module(name)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(gomod)
	return hex.EncodeToString(sum[:])[:16], nil
}

// DefaultDir is where the binaries go: $SHOAL_CONTROLPLANE_DIR, else
// ${XDG_CACHE_HOME:-~/.cache}/shoal/controlplane.
func DefaultDir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = filepath.Join(os.TempDir(), "shoal-cache")
	}
	return filepath.Join(base, "shoal", "controlplane")
}

// ErrNoGo is the cause of Build's error when it has something to build and
// finds no go command.
var ErrNoGo = errors.New("the go command is not on PATH")

// Builder builds the control plane into Dir. The zero value builds all four
// binaries and the CRDs into DefaultDir, silently.
type Builder struct {
	// Dir is the output directory (binaries under bin/); "" is DefaultDir.
	Dir string
	// SkipIstiod leaves out pilot-discovery (SHOAL_IMAGES=public: istiod
	// runs from its image). Istio's CRDs are made either way.
	SkipIstiod bool
	// Progress receives one line per step and, during a long build, a line
	// every 30 seconds; nil discards them.
	Progress io.Writer
	// Go is the go command; "" looks for go on PATH.
	Go string

	tick time.Duration // how often a running build reports (tests shorten it)
}

func (b *Builder) dir() string {
	if b.Dir != "" {
		return b.Dir
	}
	return DefaultDir()
}

func (b *Builder) logf(format string, args ...any) {
	if b.Progress != nil {
		fmt.Fprintf(b.Progress, "controlplane: "+format+"\n", args...)
	}
}

// Stale returns what Build would make: the binaries that are missing or
// whose stamp differs from their module's, and CRDsFile when it is missing
// or out of date. Empty means everything is built.
func (b *Builder) Stale() ([]string, error) {
	dir := b.dir()
	var stale []string
	for _, c := range Components(!b.SkipIstiod) {
		ok, err := upToDate(filepath.Join(dir, "bin", c.Binary), filepath.Join(dir, "bin", "."+c.Binary+".stamp"), c.Module, true)
		if err != nil {
			return nil, err
		}
		if !ok {
			stale = append(stale, c.Binary)
		}
	}
	ok, err := upToDate(filepath.Join(dir, CRDsFile), filepath.Join(dir, ".crds.stamp"), istiodModule, false)
	if err != nil {
		return nil, err
	}
	if !ok {
		stale = append(stale, CRDsFile)
	}
	return stale, nil
}

// upToDate tells whether file exists (executable when exe), is not empty,
// and its stamp file holds module's stamp.
func upToDate(file, stampFile, module string, exe bool) (bool, error) {
	want, err := Stamp(module)
	if err != nil {
		return false, err
	}
	fi, err := os.Stat(file)
	if err != nil || fi.IsDir() || fi.Size() == 0 || (exe && fi.Mode()&0o111 == 0) {
		return false, nil
	}
	got, err := os.ReadFile(stampFile) //nolint:gosec // our own stamp in the output directory
	if err != nil {
		return false, nil
	}
	return strings.TrimSpace(string(got)) == want, nil
}

// Build makes what Stale reports, one binary at a time, and returns nil
// at once when nothing is stale (no go command needed then). Two builders
// of one directory take turns (a lock file in it).
func (b *Builder) Build(ctx context.Context) error {
	stale, err := b.Stale()
	if err != nil || len(stale) == 0 {
		return err
	}
	goCmd, err := b.goCommand()
	if err != nil {
		return fmt.Errorf("controlplane: building %s (into %s) needs Go 1.26 or newer and the Go module proxy: %w; install Go (https://go.dev/dl/) and retry, or set %s to a directory where they are built",
			strings.Join(stale, ", "), b.dir(), err, EnvDir)
	}
	dir := b.dir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o750); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	unlock, err := b.lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	// Another builder may have made some while this one waited.
	if stale, err = b.Stale(); err != nil || len(stale) == 0 {
		return err
	}
	work, err := os.MkdirTemp("", "shoal-controlplane-")
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	mods := map[string]string{}
	moduleDir := func(name string) (string, error) {
		if d, ok := mods[name]; ok {
			return d, nil
		}
		d := filepath.Join(work, name)
		if err := os.Mkdir(d, 0o750); err != nil {
			return "", fmt.Errorf("controlplane: %w", err)
		}
		if err := WriteModule(d, name); err != nil {
			return "", err
		}
		mods[name] = d
		return d, nil
	}
	for _, c := range Components(!b.SkipIstiod) {
		if !slices.Contains(stale, c.Binary) {
			continue
		}
		mdir, err := moduleDir(c.Module)
		if err != nil {
			return err
		}
		if err := b.buildBinary(ctx, goCmd, mdir, dir, c); err != nil {
			return err
		}
	}
	if slices.Contains(stale, CRDsFile) {
		mdir, err := moduleDir(istiodModule)
		if err != nil {
			return err
		}
		if err := b.copyCRDs(ctx, goCmd, mdir, dir); err != nil {
			return err
		}
	}
	return nil
}

func (b *Builder) goCommand() (string, error) {
	if b.Go != "" {
		return b.Go, nil
	}
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w (%w)", ErrNoGo, err)
	}
	return p, nil
}

// lock takes dir's build lock, saying so when it has to wait.
func (b *Builder) lock(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".build.lock"), os.O_WRONLY|os.O_CREATE, 0o600) //nolint:gosec // the output directory the caller chose
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b.logf("waiting for another build into %s to finish", dir)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("controlplane: lock %s: %w", f.Name(), err)
		}
	}
	return func() { _ = f.Close() }, nil
}

// buildBinary runs go build for c in the module directory mdir.
func (b *Builder) buildBinary(ctx context.Context, goCmd, mdir, dir string, c Component) error {
	want, err := Stamp(c.Module)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, "bin", c.Binary)
	b.logf("building %s (%s, pinned module %s; a cold build takes minutes, later ones reuse Go's build cache)", c.Binary, c.Package, c.Module)
	start := time.Now()
	ldflags := strings.TrimSpace("-s -w " + c.LDFlags)
	if _, err := b.run(ctx, c.Binary+" still building", goCmd, mdir, "build", "-trimpath", "-ldflags="+ldflags, "-o", out+".tmp", c.Package); err != nil {
		_ = os.Remove(out + ".tmp")
		return fmt.Errorf("controlplane: building %s failed: %w", c.Binary, err)
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "."+c.Binary+".stamp"), []byte(want+"\n"), 0o600); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	b.logf("%s built in %s", c.Binary, time.Since(start).Round(time.Second))
	return nil
}

// copyCRDs copies Istio's CRDs out of the istiod module's istio.io/istio.
func (b *Builder) copyCRDs(ctx context.Context, goCmd, mdir, dir string) error {
	want, err := Stamp(istiodModule)
	if err != nil {
		return err
	}
	b.logf("copying Istio's CRDs from istio.io/istio (pinned module %s)", istiodModule)
	out, err := b.run(ctx, "istio.io/istio still downloading", goCmd, mdir, "mod", "download", "-json", "istio.io/istio")
	if err != nil {
		return fmt.Errorf("controlplane: downloading istio.io/istio for its CRDs failed: %w", err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		if err == nil {
			err = errors.New("no Dir")
		}
		return fmt.Errorf("controlplane: go mod download istio.io/istio did not say where the module is (%w %s): %s", err, mod.Error, out)
	}
	src := filepath.Join(mod.Dir, "manifests", "charts", "base", "files", "crd-all.gen.yaml")
	crds, err := os.ReadFile(src) //nolint:gosec // a file of the module go just downloaded
	if err == nil && len(crds) == 0 {
		err = fmt.Errorf("%s is empty", src)
	}
	if err != nil {
		return fmt.Errorf("controlplane: Istio CRDs not found in the module cache: %w", err)
	}
	dst := filepath.Join(dir, CRDsFile)
	if err := os.WriteFile(dst+".tmp", crds, 0o600); err != nil { //nolint:gosec // the output directory the caller chose
		return fmt.Errorf("controlplane: %w", err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, ".crds.stamp"), []byte(want+"\n"), 0o600)
}

// run runs the go command in mdir outside any workspace and returns its
// standard output; every tick while it runs it reports "... <doing> (<time>)".
// Its error shows the command and its last output.
func (b *Builder) run(ctx context.Context, doing, goCmd, mdir string, args ...string) ([]byte, error) {
	stdout, stderr := &tail{max: 1 << 20}, &tail{max: 8 << 10}
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = mdir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = 10 * time.Second // a child that keeps the pipes open
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", goCmd, strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := b.tick
	if tick <= 0 {
		tick = 30 * time.Second
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	start := time.Now()
	for {
		select {
		case err := <-done:
			if err != nil {
				return nil, fmt.Errorf("go %s (in a copy of the pinned module, GOWORK=off): %w\n%s",
					strings.Join(args, " "), err, strings.TrimSpace(stderr.String()+"\n"+stdout.String()))
			}
			return stdout.buf, nil
		case <-ticker.C:
			b.logf("  ... %s (%s)", doing, time.Since(start).Round(time.Second))
		}
	}
}

// tail keeps the last max bytes written to it.
type tail struct {
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.buf) }
