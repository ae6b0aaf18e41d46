package command

import (
	"bufio"
	"context"
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

	"github.com/spf13/cobra"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/localmesh/adsprobe"
)

func newDevCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local Istio control plane for Shoal applications",
		Long: `Run the real control plane on this machine, in the background: etcd,
kube-apiserver, kube-controller-manager and istiod (localmesh), on free
loopback ports. 'shoal dev up' prints istiod's xDS address, the kubeconfig
of the API server and the environment a Shoal application needs to use them.

The state, kubeconfig and logs live in $SHOAL_DEV_DIR, else
${XDG_STATE_HOME:-~/.local/state}/shoal/dev. The logs stay after 'down' and
later runs append to them.

The control-plane binaries live in $SHOAL_CONTROLPLANE_DIR, else
${XDG_CACHE_HOME:-~/.cache}/shoal/controlplane. The first 'shoal dev up'
(or 'shoal dev build') builds them there from the versions pinned inside
this shoal binary, with the go command (Go 1.26 or newer and the Go module
proxy; 15-25 minutes on 2 cores, with progress on stderr); later runs
reuse them. SHOAL_IMAGES=public runs istiod from the istio/pilot image and
builds no pilot-discovery.`,
		Example: `  shoal dev up
  eval "$(shoal dev up -o env)"
  shoal dev build --check
  shoal dev status -o json
  shoal dev apply -f virtualservice.yaml
  shoal dev deploy ./demoapp --version v2
  shoal dev logs istiod
  shoal dev down`,
		Args: exactArgs(0, "a subcommand (up, down, status, logs, apply, delete, deploy, build)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(e.stderr)
			_ = cmd.Help()
			return usageErrorf("no subcommand given")
		},
	}
	cmd.AddCommand(newDevUpCmd(e), newDevDownCmd(e), newDevStatusCmd(e), newDevLogsCmd(e),
		newDevApplyCmd(e, "apply"), newDevApplyCmd(e, "delete"), newDevDeployCmd(e), newDevBuildCmd(e), newDevSuperviseCmd(e))
	return cmd
}

// devPathsOrErr returns the paths of shoal dev's directory.
func devPathsOrErr() (devPaths, error) {
	d, err := devDir()
	return devPaths{dir: d}, err
}

func newDevUpCmd(e *env) *cobra.Command {
	var output string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the local control plane in the background",
		Long: `Start etcd, kube-apiserver, kube-controller-manager and istiod in the
background, wait until istiod answers on an ADS stream, and print its xDS
address, the kubeconfig and the environment a Shoal application needs
(-o env prints only the environment, for eval). Control-plane binaries that
are missing or pinned differently are built first ('shoal dev build'). The
control plane keeps
running after this command exits, until 'shoal dev down'. When one is
already running, up prints it and starts nothing.`,
		Example: `  shoal dev up
  eval "$(shoal dev up -o env)"`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "env" {
				if err := checkFormat(output); err != nil {
					return err
				}
			}
			p, err := devPathsOrErr()
			if err != nil {
				return err
			}
			st, err := readDevState(p)
			if err == nil && running(st.PID) {
				fmt.Fprintf(e.stderr, "a local control plane is already running (pid %d)\n", st.PID)
				return printDevUp(e.stdout, output, st)
			}
			if err := buildControlPlane(cmd.Context(), e); err != nil {
				return err
			}
			clearStale(p)
			st, err = startSupervisor(cmd.Context(), e, p, timeout)
			if err != nil {
				return err
			}
			return printDevUp(e.stdout, output, st)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", formatText, "output format: text, json, yaml, or env (shell export lines)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the control plane to be ready")
	return cmd
}

func printDevUp(w io.Writer, format string, st *devState) error {
	if format == "env" {
		for _, kv := range st.appEnv() {
			fmt.Fprintf(w, "export %s=%s\n", kv[0], kv[1])
		}
		return nil
	}
	return printData(w, format, st, func(w io.Writer) error {
		fmt.Fprintf(w, "istiod (xDS):    %s\n", st.XDSAddress)
		fmt.Fprintf(w, "kube-apiserver:  %s\n", st.APIServer)
		fmt.Fprintf(w, "kubeconfig:      %s\n", st.Kubeconfig)
		fmt.Fprintf(w, "logs:            %s\n", st.LogDir)
		fmt.Fprintf(w, "\nThe environment of a Shoal application:\n")
		for _, kv := range st.appEnv() {
			fmt.Fprintf(w, "  export %s=%s\n", kv[0], kv[1])
		}
		return nil
	})
}

// clearStale removes the state of a supervisor that is gone and kills the
// control-plane processes it left (localmesh.CleanStale: only processes
// whose owner is gone).
func clearStale(p devPaths) {
	if st, err := readDevState(p); err == nil && !running(st.PID) {
		_ = os.Remove(p.state())
	}
	localmesh.CleanStale()
}

// startSupervisor runs `shoal dev supervise` detached from this process
// (its own session, output to its log), copies its progress to stderr,
// and returns the state it writes once the control plane is ready.
func startSupervisor(ctx context.Context, e *env, p devPaths, timeout time.Duration) (*devState, error) {
	if err := os.MkdirAll(p.logs(), 0o750); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(p.supervisorLog(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logf.Close() }()
	offset, _ := logf.Seek(0, io.SeekEnd)
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the shoal binary to run the supervisor: %w", err)
	}
	// argv[0] stays the name this process was started with: a test binary
	// standing in for shoal tells its commands apart by it.
	sup := &exec.Cmd{
		Path:        exe,
		Args:        []string{os.Args[0], "dev", "supervise"},
		Env:         append(os.Environ(), envDevDir+"="+p.dir),
		Stdout:      logf,
		Stderr:      logf,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := sup.Start(); err != nil {
		return nil, fmt.Errorf("start the supervisor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sup.Wait() }()
	fmt.Fprintf(e.stderr, "starting the local control plane (supervisor pid %d; log %s)\n", sup.Process.Pid, p.supervisorLog())

	tail := &logTail{path: p.supervisorLog(), offset: offset, w: e.stderr}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			tail.copy()
			return nil, fmt.Errorf("the control plane did not start (supervisor: %w); its log is %s", err, p.supervisorLog())
		case <-deadline.C:
			_ = sup.Process.Signal(syscall.SIGTERM)
			tail.copy()
			return nil, fmt.Errorf("the control plane was not ready within %s (stopping it); logs in %s", timeout, p.logs())
		case <-ctx.Done():
			_ = sup.Process.Signal(syscall.SIGTERM)
			return nil, ctx.Err()
		case <-tick.C:
			tail.copy()
			if st, err := readDevState(p); err == nil && st.PID == sup.Process.Pid {
				return st, nil
			}
		}
	}
}

// logTail copies what is appended to a log file to w.
type logTail struct {
	path   string
	offset int64
	w      io.Writer
}

func (t *logTail) copy() {
	f, err := os.Open(t.path)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		return
	}
	n, _ := io.Copy(t.w, f)
	t.offset += n
}

func newDevDownCmd(e *env) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the local control plane",
		Long: `Stop istiod, kube-controller-manager, kube-apiserver and etcd, and remove
the state and kubeconfig (the logs stay). Nothing is left running: a process
that does not stop within --timeout is killed.`,
		Example: `  shoal dev down`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := devPathsOrErr()
			if err != nil {
				return err
			}
			st, err := readDevState(p)
			if errors.Is(err, errDevNotRunning) {
				if pid := startingSupervisor(p); pid > 0 {
					stopSupervisor(pid, timeout)
					localmesh.CleanStale() // what a killed supervisor left
					cleanStaleWorkloads(context.WithoutCancel(cmd.Context()), p)
					fmt.Fprintf(e.stdout, "stopped the local control plane while it was starting; logs in %s\n", p.logs())
					return nil
				}
				localmesh.CleanStale()
				fmt.Fprintln(e.stdout, "no local control plane is running")
				return nil
			}
			if err != nil {
				_ = os.Remove(p.state())
				return err
			}
			if running(st.PID) && isSupervisor(st.PID) {
				stopSupervisor(st.PID, timeout)
			}
			localmesh.CleanStale() // what a killed supervisor left
			cleanStaleWorkloads(context.WithoutCancel(cmd.Context()), p)
			var left []string
			for _, c := range st.Components {
				if running(c.PID) {
					left = append(left, fmt.Sprintf("%s (pid %d)", c.Name, c.PID))
				}
			}
			p.removeFiles()
			if len(left) > 0 {
				return fmt.Errorf("still running after down: %s; stop them with kill", strings.Join(left, ", "))
			}
			fmt.Fprintf(e.stdout, "stopped the local control plane; logs in %s\n", st.LogDir)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for a graceful stop")
	return cmd
}

// stopSupervisor sends the supervisor SIGTERM (it stops the control
// plane) and SIGKILL if it has not exited within timeout.
func stopSupervisor(pid int, timeout time.Duration) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if !waitGone(pid, timeout) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 5*time.Second)
	}
}

// waitGone waits up to limit for pid to exit.
func waitGone(pid int, limit time.Duration) bool {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if !running(pid) {
			return true
		}
	}
	return !running(pid)
}

// devStatus is what `shoal dev status` reports.
type devStatus struct {
	Running    bool              `json:"running"`
	Starting   bool              `json:"starting,omitempty"`
	PID        int               `json:"pid,omitempty"`
	Started    *time.Time        `json:"started,omitempty"`
	XDSAddress string            `json:"xdsAddress,omitempty"`
	IstiodUp   bool              `json:"istiodAnswers"`
	APIServer  string            `json:"apiServer,omitempty"`
	Kubeconfig string            `json:"kubeconfig,omitempty"`
	LogDir     string            `json:"logDir,omitempty"`
	Components []componentStatus `json:"components,omitempty"`
	Problem    string            `json:"problem,omitempty"`
}

type componentStatus struct {
	Name    string `json:"name"`
	PID     int    `json:"pid"`
	Running bool   `json:"running"`
}

func newDevStatusCmd(e *env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the local control plane runs, and where",
		Long: `Show the local control plane's processes and whether each runs, and whether
istiod answers on an ADS stream. Exit code 1 when it is not running or a
part of it is down.`,
		Example: `  shoal dev status
  shoal dev status -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			p, err := devPathsOrErr()
			if err != nil {
				return err
			}
			s := devStatusOf(cmd.Context(), p)
			if err := printData(e.stdout, output, s, func(w io.Writer) error {
				if !s.Running && s.PID == 0 {
					fmt.Fprintln(w, "not running")
					return nil
				}
				if s.Starting {
					fmt.Fprintf(w, "starting (supervisor pid %d)\n", s.PID)
					return nil
				}
				fmt.Fprintf(w, "%-24s pid %-8d %s\n", "supervisor", s.PID, upDown(s.Running))
				for _, c := range s.Components {
					fmt.Fprintf(w, "%-24s pid %-8d %s\n", c.Name, c.PID, upDown(c.Running))
				}
				fmt.Fprintf(w, "%-24s %s %s\n", "istiod (xDS)", s.XDSAddress, map[bool]string{true: "answers", false: "does not answer"}[s.IstiodUp])
				fmt.Fprintf(w, "%-24s %s\n%-24s %s\n", "kubeconfig", s.Kubeconfig, "logs", s.LogDir)
				return nil
			}); err != nil {
				return err
			}
			if s.Problem != "" {
				return errors.New(s.Problem)
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func upDown(ok bool) string {
	if ok {
		return "running"
	}
	return "NOT RUNNING"
}

func devStatusOf(ctx context.Context, p devPaths) devStatus {
	st, err := readDevState(p)
	if errors.Is(err, errDevNotRunning) {
		if pid := startingSupervisor(p); pid > 0 {
			return devStatus{PID: pid, Starting: true, LogDir: p.logs(), Problem: fmt.Sprintf(
				"the local control plane is starting (supervisor pid %d); see 'shoal dev logs supervisor'", pid)}
		}
	}
	if err != nil {
		return devStatus{Problem: err.Error()}
	}
	s := devStatus{
		PID: st.PID, Started: &st.Started, XDSAddress: st.XDSAddress, APIServer: st.APIServer,
		Kubeconfig: st.Kubeconfig, LogDir: st.LogDir, Running: running(st.PID),
	}
	var down []string
	if !s.Running {
		down = append(down, "supervisor")
	}
	for _, c := range st.Components {
		cs := componentStatus{Name: c.Name, PID: c.PID, Running: running(c.PID)}
		if !cs.Running {
			down = append(down, c.Name)
		}
		s.Components = append(s.Components, cs)
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s.IstiodUp = adsprobe.Ping(pctx, st.XDSAddress) == nil
	if !s.IstiodUp {
		down = append(down, "istiod's ADS stream at "+st.XDSAddress)
	}
	if len(down) > 0 {
		s.Running = false
		s.Problem = fmt.Sprintf("the local control plane is not healthy: %s down; see 'shoal dev logs' and restart it with 'shoal dev down && shoal dev up'", strings.Join(down, ", "))
	}
	return s
}

func newDevLogsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logs [component]",
		Short: "Print the local control plane's logs",
		Long: `Print the kept log of a component: etcd, kube-apiserver,
kube-controller-manager, istiod (every replica; istiod-0 for one) or
supervisor. Logs stay after 'shoal dev down', and each start appends to them
after a line that names the component and the time. Without a component,
list the logs there are.`,
		Example: `  shoal dev logs
  shoal dev logs istiod`,
		Args: rangeArgs(0, 1, "at most one component"),
		RunE: func(_ *cobra.Command, args []string) error {
			p, err := devPathsOrErr()
			if err != nil {
				return err
			}
			files, _ := filepath.Glob(filepath.Join(p.logs(), "*.log"))
			var names []string
			for _, f := range files {
				names = append(names, strings.TrimSuffix(filepath.Base(f), ".log"))
			}
			slices.Sort(names)
			if len(args) == 0 {
				if len(names) == 0 {
					return fmt.Errorf("no logs in %s; start the control plane with 'shoal dev up'", p.logs())
				}
				for _, n := range names {
					fmt.Fprintln(e.stdout, n)
				}
				return nil
			}
			var match []string
			for _, n := range names {
				if n == args[0] || strings.HasPrefix(n, args[0]+"-") {
					match = append(match, n)
				}
			}
			if len(match) == 0 {
				return usageErrorf("no log of %q in %s; have: %s", args[0], p.logs(), orNone(strings.Join(names, ", ")))
			}
			for _, n := range match {
				if len(match) > 1 {
					fmt.Fprintf(e.stdout, "==> %s <==\n", n)
				}
				if err := copyFile(e.stdout, filepath.Join(p.logs(), n+".log")); err != nil {
					return err
				}
			}
			return nil
		},
	}
	return cmd
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path) //nolint:gosec // a log in shoal dev's own directory
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = io.Copy(w, f)
	return err
}

func newDevApplyCmd(e *env, verb string) *cobra.Command {
	var files []string
	what := map[string]string{
		"apply":  "Create or update objects on the local API server, like kubectl apply -f",
		"delete": "Delete objects from the local API server, like kubectl delete -f",
	}[verb]
	cmd := &cobra.Command{
		Use:   verb + " -f FILE",
		Short: what,
		Long: what + `.
-f takes a YAML or JSON file of one or more objects, or - for stdin, and can
be repeated. Namespaced objects without a namespace go to "default".` + map[string]string{
			"apply":  "\nApply is server-side apply.",
			"delete": "\nDelete tries every object and fails if any could not be deleted (one that\ndoes not exist, say).",
		}[verb],
		Example: fmt.Sprintf(`  shoal dev %[1]s -f virtualservice.yaml
  cat objects.yaml | shoal dev %[1]s -f -`, verb),
		Args: exactArgs(0, "no arguments (the files go after -f)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return usageErrorf("no -f FILE given")
			}
			_, st, err := runningDevState()
			if err != nil {
				return err
			}
			client, err := localmesh.NewClient(st.Kubeconfig)
			if err != nil {
				return err
			}
			for _, f := range files {
				b, err := readInput(e.stdin, f)
				if err != nil {
					return err
				}
				op := client.Apply
				if verb == "delete" {
					op = client.Delete
				}
				if err := op(cmd.Context(), b); err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				fmt.Fprintf(e.stdout, "%s: %s\n", f, map[string]string{"apply": "applied", "delete": "deleted"}[verb])
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "a YAML or JSON file of objects, - for stdin")
	return cmd
}

func readInput(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(bufio.NewReader(stdin))
	}
	b, err := os.ReadFile(name) //nolint:gosec // the user's file
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return b, nil
}
