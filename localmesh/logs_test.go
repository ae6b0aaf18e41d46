package localmesh

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestLogsAppendAcrossStarts starts the same component twice into one log
// directory, as a restarted istiod does: both runs' output stays, each
// after its own header.
func TestLogsAppendAcrossStarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	for _, word := range []string{"first", "second"} {
		p, err := startProc(dir, "istiod-0", "/bin/sh", []string{"-c", "echo " + word}, nil)
		if err != nil {
			t.Fatal(err)
		}
		<-p.done
	}
	b, err := os.ReadFile(filepath.Join(dir, "istiod-0.log"))
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?s)^=== localmesh: istiod-0 started at \S+ ===\nfirst\n=== localmesh: istiod-0 started at \S+ ===\nsecond\n$`)
	if !want.Match(b) {
		t.Fatalf("istiod-0.log =\n%s\nwant both starts in order, each after its header", b)
	}
}

// failingBinDir is a control-plane directory whose binaries are shell scripts
// that print a line and exit 1: a control plane that cannot start.
func failingBinDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, b := range requiredBinaries(LocalImages) {
		script := "#!/bin/sh\necho \"" + b + " cannot start: fake binary\" >&2\nexit 1\n"
		if err := os.WriteFile(filepath.Join(bin, b), []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestFailedStartKeepsLogs checks that when Start fails its error names
// where the logs are and the failing component's log is there, with and
// without WithLogDir.
func TestFailedStartKeepsLogs(t *testing.T) {
	bin := failingBinDir(t)
	for name, opts := range map[string][]Option{
		"run directory": nil,
		"WithLogDir":    {WithLogDir(filepath.Join(t.TempDir(), "logs"))},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Start(context.Background(), append([]Option{WithBinDir(bin)}, opts...)...)
			if err == nil {
				t.Fatal("Start succeeded with binaries that exit at once")
			}
			m := regexp.MustCompile(`\(control-plane logs: (\S+)\)$`).FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("err = %v, want it to name the log directory", err)
			}
			b, rerr := os.ReadFile(filepath.Join(m[1], "etcd.log"))
			if rerr != nil {
				t.Fatalf("etcd's log was not kept: %v", rerr)
			}
			if !strings.Contains(string(b), "etcd cannot start: fake binary") {
				t.Fatalf("etcd.log = %q, want the binary's output", b)
			}
			entries, _ := os.ReadDir(m[1])
			for _, e := range entries {
				if !strings.HasSuffix(e.Name(), ".log") {
					t.Errorf("%s kept beside the logs; want only *.log", e.Name())
				}
			}
			if len(opts) == 0 {
				_ = os.RemoveAll(m[1])
			}
		})
	}
}

// TestStopKeepsLogsOnRequest stops a mesh whose run directory holds logs,
// a key and etcd's data: Stop removes all of it, or with WithKeepLogs or
// SHOAL_KEEP_LOGS everything but the logs.
func TestStopKeepsLogsOnRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		env  string
		keep bool
	}{
		{name: "default"},
		{name: "WithKeepLogs", opts: []Option{WithKeepLogs()}, keep: true},
		{name: EnvKeepLogs, env: "1", keep: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvKeepLogs, tc.env)
			cfg := config{logger: slog.New(slog.DiscardHandler)}
			for _, o := range tc.opts {
				o.applyToMesh(&cfg)
			}
			dir := filepath.Join(t.TempDir(), "run")
			for _, f := range []string{"istiod-0.log", "sa.key", "etcd/member/wal"} {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			m := &Mesh{cfg: cfg, dir: dir}
			m.Stop()
			var left []string
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				left = append(left, e.Name())
			}
			want := []string(nil)
			if tc.keep {
				want = []string{"istiod-0.log"}
			}
			if !slices.Equal(left, want) {
				t.Fatalf("after Stop the run directory holds %v, want %v", left, want)
			}
		})
	}
}

// TestStopKeepsNoEmptyRunDir checks that a kept run directory without a
// log (a Start that failed before any component ran) is removed.
func TestStopKeepsNoEmptyRunDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(filepath.Join(dir, "etcd"), 0o750); err != nil {
		t.Fatal(err)
	}
	m := &Mesh{cfg: config{logger: slog.New(slog.DiscardHandler), keepLogs: true}, dir: dir}
	m.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("run directory without logs after Stop: %v, want it removed", err)
	}
	if m.hasLogs() {
		t.Fatal("hasLogs() = true for a mesh without logs")
	}
}
