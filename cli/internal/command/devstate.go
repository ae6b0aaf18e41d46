package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// envDevDir overrides where `shoal dev` keeps its state and logs.
const envDevDir = "SHOAL_DEV_DIR"

// devDir is where `shoal dev` keeps the running control plane's state
// file, kubeconfig and logs: $SHOAL_DEV_DIR, else
// ${XDG_STATE_HOME:-~/.local/state}/shoal/dev.
func devDir() (string, error) {
	if d := os.Getenv(envDevDir); d != "" {
		return filepath.Abs(d)
	}
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory for the state of shoal dev (%w); set %s", err, envDevDir)
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "shoal", "dev"), nil
}

// devPaths are the files under devDir.
type devPaths struct{ dir string }

func (p devPaths) state() string      { return filepath.Join(p.dir, "state.json") }
func (p devPaths) kubeconfig() string { return filepath.Join(p.dir, "kubeconfig") }
func (p devPaths) logs() string       { return filepath.Join(p.dir, "logs") }
func (p devPaths) lock() string       { return filepath.Join(p.dir, "lock") }

// statusToken and statusRootCert are what `shoal status` presents to the
// istiod of 'shoal dev up' (devStatusEnv).
func (p devPaths) statusToken() string    { return filepath.Join(p.dir, "status-token") }
func (p devPaths) statusRootCert() string { return filepath.Join(p.dir, "status-root-cert.pem") }
func (p devPaths) supervisorLog() string {
	return filepath.Join(p.logs(), devSupervisor+".log")
}

// removeFiles removes what a running control plane keeps in p: its state,
// kubeconfig and the credentials of `shoal status` (the logs stay).
func (p devPaths) removeFiles() {
	for _, f := range []string{p.state(), p.kubeconfig(), p.statusToken(), p.statusRootCert()} {
		_ = os.Remove(f)
	}
}

// devSupervisor is the name of the background process that runs the
// control plane (and of its log).
const devSupervisor = "supervisor"

// devState is what the supervisor writes once the control plane is ready.
type devState struct {
	PID        int       `json:"pid"` // the supervisor's
	Started    time.Time `json:"started"`
	XDSAddress string    `json:"xdsAddress"`
	// XDSTLSAddress is istiod's TLS port (xDS and debug requests for a
	// caller with a token); empty in the state of an older shoal.
	XDSTLSAddress string         `json:"xdsTLSAddress,omitempty"`
	APIServer     string         `json:"apiServer"`
	Kubeconfig    string         `json:"kubeconfig"`
	LogDir        string         `json:"logDir"`
	Components    []devComponent `json:"components"`
}

// devComponent is one process of the control plane.
type devComponent struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// appEnv is the environment a Shoal application needs to use the local
// control plane.
func (s *devState) appEnv() [][2]string {
	return [][2]string{{"SHOAL_XDS_ADDRESS", s.XDSAddress}, {"KUBECONFIG", s.Kubeconfig}}
}

func writeDevState(p devPaths, s *devState) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writePrivate(p.state(), b)
}

// writePrivate writes b to path whole (a new file renamed over the old),
// readable by this user only.
func writePrivate(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// errDevNotRunning says that no state file is there.
var errDevNotRunning = errors.New("no local control plane is running; start one with 'shoal dev up'")

func readDevState(p devPaths) (*devState, error) {
	b, err := os.ReadFile(p.state())
	if errors.Is(err, os.ErrNotExist) {
		return nil, errDevNotRunning
	}
	if err != nil {
		return nil, err
	}
	var s devState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s is not a shoal dev state file (%w); run 'shoal dev down' to clear it", p.state(), err)
	}
	return &s, nil
}

// runningDevState returns the state of the running control plane, or
// errDevNotRunning.
func runningDevState() (devPaths, *devState, error) {
	p, err := devPathsOrErr()
	if err != nil {
		return p, nil, err
	}
	st, err := readDevState(p)
	if err != nil {
		return p, nil, err
	}
	if !running(st.PID) {
		return p, nil, errDevNotRunning
	}
	return p, st, nil
}

// running reports whether process pid exists and is not a zombie (a
// reparented supervisor that has exited may wait a while to be reaped).
func running(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil // no /proc: ask the kernel
	}
	// The state follows the command name in parentheses.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// isSupervisor reports whether pid is a `shoal dev supervise` process (and
// not another process that reuses a stale PID).
func isSupervisor(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return running(pid)
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	for i := 1; i+1 < len(args); i++ {
		if args[i] == "dev" && args[i+1] == "supervise" {
			return true
		}
	}
	return false
}

// startingSupervisor returns the PID of a supervisor that holds the lock
// of p (it runs, but may not have written its state yet), or 0.
func startingSupervisor(p devPaths) int {
	f, err := os.Open(p.lock())
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0 // nobody holds it
	}
	var pid int
	if _, err := fmt.Fscan(f, &pid); err != nil || !isSupervisor(pid) {
		return 0
	}
	return pid
}
