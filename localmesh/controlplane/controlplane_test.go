package controlplane

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeGo is a stand-in for the go command (a real build takes minutes): it
// logs each call and the go.mod it ran beside, and for `build` writes the
// -o file, fails with $FAKEGO_FAIL, or first waits for $FAKEGO_WAIT to
// exist; for `mod download` it names $FAKEGO_ISTIO as istio.io/istio's
// directory.
const fakeGo = `#!/bin/sh
n=$(wc -l <"$FAKEGO_LOG" 2>/dev/null || echo 0)
n=$((n + 1))
cp go.mod "$FAKEGO_LOG.$n.go.mod"
echo "$*|GOWORK=$GOWORK|GOFLAGS=$GOFLAGS" >>"$FAKEGO_LOG"
case "$1" in
build)
	if [ -n "$FAKEGO_FAIL" ]; then echo "fake go: $FAKEGO_FAIL" >&2; exit 2; fi
	if [ -n "$FAKEGO_WAIT" ]; then while [ ! -e "$FAKEGO_WAIT" ]; do sleep 0.01; done; fi
	out=; prev=
	for a in "$@"; do if [ "$prev" = -o ]; then out=$a; fi; prev=$a; done
	printf '#!/bin/sh\necho built\n' >"$out"
	chmod +x "$out";;
mod)
	echo "{\"Path\": \"istio.io/istio\", \"Dir\": \"$FAKEGO_ISTIO\"}";;
*)
	echo "fake go: unexpected $*" >&2; exit 3;;
esac
`

// fake sets up the fake go and a fake istio.io/istio module directory, and
// returns the go command's path and a function that reads its calls.
func fake(t *testing.T) (string, func() []string) {
	t.Helper()
	dir := t.TempDir()
	goCmd := filepath.Join(dir, "go")
	if err := os.WriteFile(goCmd, []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	istio := filepath.Join(dir, "istio")
	crds := filepath.Join(istio, "manifests", "charts", "base", "files")
	if err := os.MkdirAll(crds, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crds, "crd-all.gen.yaml"), []byte("kind: CustomResourceDefinition # fake\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "calls")
	t.Setenv("FAKEGO_LOG", logFile)
	t.Setenv("FAKEGO_ISTIO", istio)
	t.Setenv("FAKEGO_FAIL", "")
	t.Setenv("FAKEGO_WAIT", "")
	return goCmd, func() []string {
		b, err := os.ReadFile(logFile)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
}

// built lays out dir as a finished build: every binary and the CRDs with
// the stamps of the embedded modules, in the script's format.
func built(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range Components(true) {
		write(filepath.Join("bin", c.Binary), "#!/bin/sh\necho warm\n", 0o755)
		write(filepath.Join("bin", "."+c.Binary+".stamp"), mustStamp(t, c.Module)+"\n", 0o644)
	}
	write(CRDsFile, "kind: CustomResourceDefinition # warm\n", 0o644)
	write(".crds.stamp", mustStamp(t, "istiod")+"\n", 0o644)
}

func mustStamp(t *testing.T, module string) string {
	t.Helper()
	s, err := Stamp(module)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUpToDateBuildsNothing(t *testing.T) {
	goCmd, calls := fake(t)
	dir := t.TempDir()
	built(t, dir)
	var progress bytes.Buffer
	b := &Builder{Dir: dir, Go: goCmd, Progress: &progress}
	if stale, err := b.Stale(); err != nil || len(stale) != 0 {
		t.Fatalf("Stale() = %v, %v; want nothing", stale, err)
	}
	if err := b.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := calls(); len(c) != 0 {
		t.Errorf("go ran on an up-to-date directory: %q", c)
	}
	if progress.Len() != 0 {
		t.Errorf("progress on an up-to-date directory: %q", progress.String())
	}
	if got := read(t, filepath.Join(dir, "bin", "etcd")); !strings.Contains(got, "warm") {
		t.Errorf("etcd was replaced: %q", got)
	}
}

func TestChangedStampRebuildsThatBinary(t *testing.T) {
	goCmd, calls := fake(t)
	dir := t.TempDir()
	built(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "bin", ".etcd.stamp"), []byte("0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	b := &Builder{Dir: dir, Go: goCmd, Progress: &progress}
	if stale, err := b.Stale(); err != nil || !slices.Equal(stale, []string{"etcd"}) {
		t.Fatalf("Stale() = %v, %v; want [etcd]", stale, err)
	}
	if err := b.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := calls()
	want := "build -trimpath -ldflags=-s -w -o " + filepath.Join(dir, "bin", "etcd.tmp") + " go.etcd.io/etcd/server/v3|GOWORK=off|GOFLAGS=-buildvcs=false"
	if len(c) != 1 || c[0] != want {
		t.Fatalf("go calls = %q; want [%q]", c, want)
	}
	if got := read(t, filepath.Join(dir, "bin", ".etcd.stamp")); got != mustStamp(t, "etcd")+"\n" {
		t.Errorf("etcd stamp = %q; want the etcd module's", got)
	}
	if got := read(t, filepath.Join(dir, "bin", "etcd")); !strings.Contains(got, "built") {
		t.Errorf("etcd not rebuilt: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "etcd.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("etcd.tmp left behind: %v", err)
	}
	if !strings.Contains(progress.String(), "controlplane: building etcd (go.etcd.io/etcd/server/v3") ||
		!strings.Contains(progress.String(), "controlplane: etcd built in ") {
		t.Errorf("progress = %q; want the build of etcd", progress.String())
	}
	if stale, err := b.Stale(); err != nil || len(stale) != 0 {
		t.Errorf("after Build, Stale() = %v, %v; want nothing", stale, err)
	}
}

func TestEmptyDirBuildsEverythingFromThePinnedModules(t *testing.T) {
	for _, skip := range []bool{false, true} {
		t.Run(map[bool]string{false: "local", true: "public"}[skip], func(t *testing.T) {
			goCmd, calls := fake(t)
			dir := filepath.Join(t.TempDir(), "new")
			b := &Builder{Dir: dir, Go: goCmd, SkipIstiod: skip}
			if err := b.Build(context.Background()); err != nil {
				t.Fatal(err)
			}
			var wantBuilt []string
			for _, c := range Components(!skip) {
				wantBuilt = append(wantBuilt, c.Package)
			}
			c := calls()
			var gotBuilt []string
			for i, call := range c {
				args := strings.Fields(strings.Split(call, "|")[0])
				var module string
				switch args[0] {
				case "build":
					pkg := args[len(args)-1]
					gotBuilt = append(gotBuilt, pkg)
					i := slices.IndexFunc(components, func(c Component) bool { return c.Package == pkg })
					module = components[i].Module
					if module == "kube" && !strings.Contains(call, "-X k8s.io/component-base/version.gitVersion=v1.36.3") {
						t.Errorf("kube build without the version ldflags: %q", call)
					}
				case "mod":
					module = "istiod"
				}
				// Each command ran in a copy of the embedded module.
				gomod, _, err := Module(module)
				if err != nil {
					t.Fatal(err)
				}
				if got := read(t, os.Getenv("FAKEGO_LOG")+"."+strconv.Itoa(i+1)+".go.mod"); got != string(gomod) {
					t.Errorf("call %q ran beside a go.mod that is not module %s's", call, module)
				}
			}
			if !slices.Equal(gotBuilt, wantBuilt) {
				t.Errorf("built %q; want %q", gotBuilt, wantBuilt)
			}
			if last := c[len(c)-1]; !strings.HasPrefix(last, "mod download -json istio.io/istio|") {
				t.Errorf("last go call %q; want the download of istio.io/istio for its CRDs", last)
			}
			if got := read(t, filepath.Join(dir, CRDsFile)); got != "kind: CustomResourceDefinition # fake\n" {
				t.Errorf("CRDs = %q; want crd-all.gen.yaml of istio.io/istio", got)
			}
			if stale, err := b.Stale(); err != nil || len(stale) != 0 {
				t.Errorf("after Build, Stale() = %v, %v; want nothing", stale, err)
			}
			_, err := os.Stat(filepath.Join(dir, "bin", "pilot-discovery"))
			if skip != errors.Is(err, os.ErrNotExist) {
				t.Errorf("SkipIstiod=%v, pilot-discovery: %v", skip, err)
			}
		})
	}
}

func TestNoGoSaysGoIsNeeded(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	dir := t.TempDir()
	err := (&Builder{Dir: dir}).Build(context.Background())
	if !errors.Is(err, ErrNoGo) {
		t.Fatalf("Build without go = %v; want ErrNoGo", err)
	}
	for _, want := range []string{"building etcd, kube-apiserver, kube-controller-manager, pilot-discovery, istio-crds.yaml", "needs Go", "https://go.dev/dl/", EnvDir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// With nothing to build, go is not needed.
	built(t, dir)
	if err := (&Builder{Dir: dir}).Build(context.Background()); err != nil {
		t.Errorf("Build of a built directory without go: %v", err)
	}
}

func TestFailedBuildNamesTheBinaryAndShowsGosOutput(t *testing.T) {
	goCmd, _ := fake(t)
	t.Setenv("FAKEGO_FAIL", "cannot reach the module proxy")
	dir := t.TempDir()
	err := (&Builder{Dir: dir, Go: goCmd}).Build(context.Background())
	if err == nil {
		t.Fatal("Build succeeded with a failing go build")
	}
	for _, want := range []string{"controlplane: building etcd failed", "go build -trimpath", "fake go: cannot reach the module proxy", "exit status 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, f := range []string{"etcd", "etcd.tmp", ".etcd.stamp"} {
		if _, err := os.Stat(filepath.Join(dir, "bin", f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after a failed build: %v", f, err)
		}
	}
}

// signalWriter records what is written and closes seen once a line
// contains want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.seen != nil && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
		w.seen = nil
	}
	return len(p), nil
}

func TestLongBuildReportsProgress(t *testing.T) {
	goCmd, _ := fake(t)
	release := filepath.Join(t.TempDir(), "release")
	t.Setenv("FAKEGO_WAIT", release)
	dir := t.TempDir()
	built(t, dir)
	if err := os.Remove(filepath.Join(dir, "bin", "kube-apiserver")); err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{})
	w := &signalWriter{want: "... kube-apiserver still building (", seen: seen}
	b := &Builder{Dir: dir, Go: goCmd, Progress: w, tick: time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- b.Build(context.Background()) }()
	select {
	case <-seen:
	case err := <-done:
		t.Fatalf("Build returned %v before the fake go build was let go", err)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCanceledBuildStopsGo(t *testing.T) {
	goCmd, _ := fake(t)
	t.Setenv("FAKEGO_WAIT", filepath.Join(t.TempDir(), "never"))
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	w := &signalWriter{want: "building etcd", seen: make(chan struct{})}
	seen := w.seen
	done := make(chan error, 1)
	go func() { done <- (&Builder{Dir: dir, Go: goCmd, Progress: w}).Build(ctx) }()
	<-seen
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "building etcd failed") {
		t.Fatalf("canceled Build = %v; want the etcd build to fail", err)
	}
}

// TestOneCopyOfThePins checks, in a checkout, that scripts/controlplane.sh
// builds through this package and that no other copy of the pinned
// modules is left in the repository.
func TestOneCopyOfThePins(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(root, "scripts", "controlplane.sh"))
	if err != nil {
		t.Skipf("not in a Shoal checkout: %v", err)
	}
	if !strings.Contains(string(script), "go run ./localmesh/cmd/shoal-controlplane") {
		t.Error("scripts/controlplane.sh does not run localmesh/cmd/shoal-controlplane")
	}
	for _, name := range ModuleNames() {
		gomod, _, err := Module(name)
		if err != nil {
			t.Fatal(err)
		}
		first := strings.SplitN(string(gomod), "\n", 2)[0]
		err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "go.mod" {
				if d != nil && d.IsDir() && (d.Name() == ".git" || d.Name() == ".cache" || d.Name() == "node_modules") {
					return filepath.SkipDir
				}
				return err
			}
			if b, err := os.ReadFile(p); err == nil && strings.SplitN(string(b), "\n", 2)[0] == first {
				t.Errorf("%s is a second copy of the pinned module %s; keep only localmesh/controlplane/modules/%s.go.mod", p, name, name)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestEveryComponentHasItsModule(t *testing.T) {
	entries, err := modules.ReadDir("modules")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	var want []string
	for _, n := range ModuleNames() {
		want = append(want, n+".go.mod", n+".go.sum")
	}
	slices.Sort(files)
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("modules/ holds %q; want %q", files, want)
	}
	for _, c := range Components(true) {
		gomod, _, err := Module(c.Module)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(gomod), "\ntool "+c.Package+"\n") && !strings.Contains(string(gomod), "\n\t"+c.Package+"\n") {
			t.Errorf("module %s has no tool line for %s", c.Module, c.Package)
		}
	}
}

// TestRealEtcdBuild builds etcd and copies Istio's CRDs with the real go
// command from the pinned modules into a temporary directory (the other
// binaries are stand-ins with current stamps, so only etcd is built). A
// cold Go build cache took 4 min on a shared 2-core machine; a warm one
// 6-11 s.
func TestRealEtcdBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds etcd with the go command")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	built(t, dir)
	for _, f := range []string{filepath.Join("bin", "etcd"), CRDsFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	var progress bytes.Buffer
	start := time.Now()
	if err := (&Builder{Dir: dir, Progress: &progress}).Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd built in %s:\n%s", time.Since(start).Round(time.Millisecond), progress.String())
	out, err := exec.Command(filepath.Join(dir, "bin", "etcd"), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("etcd --version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "etcd Version: 3.6.8") {
		t.Errorf("etcd --version = %q; want 3.6.8, the pinned version", out)
	}
	crds := read(t, filepath.Join(dir, CRDsFile))
	for _, want := range []string{"kind: CustomResourceDefinition", "name: virtualservices.networking.istio.io", "name: serviceentries.networking.istio.io"} {
		if !strings.Contains(crds, want) {
			t.Errorf("%s has no %q", CRDsFile, want)
		}
	}
}
