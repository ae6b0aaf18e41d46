package localmesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// component is a running part of the control plane: a child process
// (proc), or for PublicImages istiod's container (ctrComponent).
type component interface {
	what() string     // its name, for messages
	running() bool    // it has not exited
	exitError() error // why it exited, once it has
	tail() string     // the end of its log
	hostPID() int     // its process on this machine
	// stop ends it, gracefully within grace (0: at once, as a crash), and
	// frees what it held.
	stop(grace time.Duration)
}

// proc is one child process with its log.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	pid  string // PID file
	done chan struct{}
	err  error
}

// startProc starts bin with args and env, appending its output to
// logDir/name.log (see openLog). The child gets its own process group and
// dies with this process (Pdeathsig).
func startProc(logDir, name, bin string, args, env []string) (*proc, error) {
	logf, err := openLog(logDir, name)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("localmesh: start %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	p.pid = writePID(name, cmd.Process.Pid, bin)
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) what() string     { return p.name }
func (p *proc) exitError() error { return p.err }
func (p *proc) hostPID() int     { return p.cmd.Process.Pid }

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil {
		return
	}
	if p.running() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	if p.pid != "" {
		_ = os.Remove(p.pid)
	}
}

// tail returns the end of the process's log, for errors.
func (p *proc) tail() string {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// pidDir holds the PID files of every process localmesh started, so that a
// later run can clean up after a crashed one.
func pidDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "shoal", "localmesh", "pids")
}

var pidMu sync.Mutex

func writePID(name string, pid int, bin string) string {
	pidMu.Lock()
	defer pidMu.Unlock()
	dir := pidDir()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return ""
	}
	f := filepath.Join(dir, fmt.Sprintf("%s-%d.pid", name, pid))
	data := fmt.Sprintf("%d\n%s\n%d\n", pid, bin, os.Getpid())
	if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
		return ""
	}
	return f
}

// CleanStale kills processes left by an earlier run that died without
// stopping them: only those recorded in localmesh's PID files whose command
// line still names the recorded binary and whose owner (the process that
// started them) is gone. Control planes of runs still alive, such as a
// second test binary on the same machine, are left alone.
func CleanStale() (killed int) {
	pidMu.Lock()
	defer pidMu.Unlock()
	files, _ := filepath.Glob(filepath.Join(pidDir(), "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f) //nolint:gosec // our own PID directory
		if err != nil {
			continue
		}
		lines := strings.SplitN(string(b), "\n", 4)
		if len(lines) < 2 {
			_ = os.Remove(f)
			continue
		}
		if len(lines) >= 3 {
			if owner, err := strconv.Atoi(lines[2]); err == nil && owner > 1 && alive(owner) {
				continue // its run is still going
			}
		}
		_ = os.Remove(f)
		pid, err := strconv.Atoi(lines[0])
		if err != nil || pid <= 1 {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.HasPrefix(cmdline, []byte(lines[1])) {
			continue // gone, or the PID was reused by something else
		}
		if syscall.Kill(-pid, syscall.SIGKILL) != nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		killed++
	}
	return killed
}

// alive reports whether a process with this PID exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// waitFor polls check until it succeeds, ctx ends, or p (if not nil) exits.
func waitFor(ctx context.Context, what string, p component, every time.Duration, check func(context.Context) error) error {
	var last error
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		last = err
		if p != nil && !p.running() {
			return fmt.Errorf("localmesh: %s exited before it was ready (%w); its log ends:\n%s", p.what(), p.exitError(), p.tail())
		}
		select {
		case <-ctx.Done():
			msg := ""
			if p != nil {
				msg = "; its log ends:\n" + p.tail()
			}
			return fmt.Errorf("localmesh: %s not ready: %w (last error: %w)%s", what, ctx.Err(), last, msg)
		case <-time.After(every):
		}
	}
}

var errNotReady = errors.New("not ready")
