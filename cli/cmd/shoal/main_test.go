package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/localmesh"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"shoal":   func() { main() },
		"meshapp": meshApp,
	})
}

// TestScripts runs the command-line scripts in testdata/script against the
// real shoal binary (this test binary, re-executed as shoal). Each script
// gets in-process Triple servers (see testserver_test.go) in its
// environment: $TRIPLE (reflection on), $NOREFLECT (reflection off) and
// $CLOSED (a port nothing listens on), $FREEPORT (a port free a moment ago),
// grpc-go servers $GRPCGO and $GRPCALPHA (see grpcserver_test.go); PATH
// has no protoc plugins (hermeticPath); $SHOAL_DIR is this checkout, $GOEXE
// the go command, $CONTROLPLANE_DIR the control-plane build localmesh uses,
// and the Go caches and proxy settings pass through.
func TestScripts(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	goEnv := goEnvironment(t)
	testscript.Run(t, testscript.Params{
		Dir:  "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"javaprovider": javaProvider},
		Setup: func(env *testscript.Env) error {
			for k, v := range goEnv {
				env.Setenv(k, v)
			}
			env.Setenv("CONTROLPLANE_DIR", localmesh.DefaultBinDir())
			if err := hermeticPath(env); err != nil {
				return err
			}
			if err := setupGRPCGo(env); err != nil {
				return err
			}
			stopDevOnExit(env)
			return setupServers(env)
		},
	})
}

// stopDevOnExit runs `shoal dev down` when a script ends, so a script that
// fails between `shoal dev up` and its own `down` leaves no control plane
// running. Scripts keep the state in $WORK/dev (SHOAL_DEV_DIR).
func stopDevOnExit(env *testscript.Env) {
	dir := filepath.Join(env.WorkDir, "dev")
	var shoal string
	for _, p := range filepath.SplitList(env.Getenv("PATH")) {
		if isProgram(filepath.Join(p, "shoal")) {
			shoal = filepath.Join(p, "shoal")
			break
		}
	}
	env.Defer(func() {
		if _, err := os.Stat(dir); err != nil || shoal == "" {
			return
		}
		cmd := exec.Command(shoal, "dev", "down")
		cmd.Env = append(os.Environ(), "SHOAL_DEV_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			env.T().Log("shoal dev down after the script:", err, string(out))
		}
	})
}

// hermeticPath drops from PATH the directories that hold protoc plugins
// (make puts .cache/bin in PATH), so that the scripts decide where the
// plugins are; a buf found there stays reachable through a directory of
// its own.
func hermeticPath(env *testscript.Env) error {
	var keep []string
	buf := ""
	for _, dir := range filepath.SplitList(env.Getenv("PATH")) {
		if !isProgram(filepath.Join(dir, "protoc-gen-go")) && !isProgram(filepath.Join(dir, "protoc-gen-go-triple")) {
			keep = append(keep, dir)
			continue
		}
		if b := filepath.Join(dir, "buf"); buf == "" && isProgram(b) {
			buf = b
		}
	}
	if buf != "" {
		dir := filepath.Join(env.WorkDir, ".bufbin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.Symlink(buf, filepath.Join(dir, "buf")); err != nil {
			return err
		}
		keep = append(keep, dir)
	}
	env.Setenv("PATH", strings.Join(keep, string(os.PathListSeparator)))
	return nil
}

func isProgram(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// goEnvironment is what the scripts need to run the go command with this
// machine's caches, module proxy and toolchain.
func goEnvironment(t *testing.T) map[string]string {
	t.Helper()
	goExe, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the scripts need the go command: %v", err)
	}
	keys := []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOTOOLCHAIN"}
	out, err := exec.Command(goExe, append([]string{"env"}, keys...)...).Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	env := map[string]string{"GOEXE": goExe}
	for i, v := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if i < len(keys) {
			env[keys[i]] = v
		}
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	env["SHOAL_DIR"] = root
	return env
}
