package localmesh

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCleanStaleKillsOnlyItsOwn starts a child as Start would, marks its
// owner dead (as after a crashed run), and checks that CleanStale kills it,
// while a PID file whose process runs another binary, and one whose owner is
// still alive (a concurrent run), are left alone.
func TestCleanStaleKillsOnlyItsOwn(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	p, err := startProc(t.TempDir(), "stale", sleep, []string{"60"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Its owner crashed: record the PID of a process that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.pid, []byte(strconv.Itoa(p.cmd.Process.Pid)+"\n"+sleep+"\n"+strconv.Itoa(dead.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A child of a run still alive (this process).
	live, err := startProc(t.TempDir(), "live", sleep, []string{"60"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.stop(time.Second) })
	// Another process, recorded with a binary it is not running.
	other := exec.Command(sleep, "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	foreign := filepath.Join(pidDir(), "foreign-"+strconv.Itoa(other.Process.Pid)+".pid")
	if err := os.WriteFile(foreign, []byte(strconv.Itoa(other.Process.Pid)+"\n/not/the/binary\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	if n := CleanStale(); n != 1 {
		t.Fatalf("CleanStale killed %d processes, want 1", n)
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stale child is still running")
	}
	if err := syscall.Kill(other.Process.Pid, 0); err != nil {
		t.Fatalf("the foreign process is gone: %v", err)
	}
	if !live.running() {
		t.Fatal("CleanStale killed the child of a live run")
	}
	if files, _ := filepath.Glob(filepath.Join(pidDir(), "*.pid")); len(files) != 1 || files[0] != live.pid {
		t.Errorf("PID files left: %v, want only %s", files, live.pid)
	}
}

func TestWaitForReportsExitAndTimeout(t *testing.T) {
	p, err := startProc(t.TempDir(), "quitter", "/bin/sh", []string{"-c", "echo boom >&2; exit 3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = waitFor(ctx, "quitter", p, 10*time.Millisecond, func(context.Context) error { return errNotReady })
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want the exit and the log tail", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := waitFor(short, "never", nil, 10*time.Millisecond, func(context.Context) error { return errNotReady }); err == nil {
		t.Fatal("waitFor succeeded on a check that never passes")
	}
}

func TestStartWithoutBinaries(t *testing.T) {
	_, err := Start(context.Background(), WithBinDir(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "etcd is not built in ") ||
		!strings.Contains(err.Error(), "build it with `go run github.com/shoalmesh/shoal/localmesh/cmd/shoal-controlplane`") {
		t.Fatalf("err = %v, want the command that builds the binaries", err)
	}
}
