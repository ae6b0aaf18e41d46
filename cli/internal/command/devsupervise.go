package command

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalmesh/shoal/localmesh"
)

// newDevSuperviseCmd is the background process `shoal dev up` starts: it
// runs the control plane until SIGTERM or SIGINT, with the state file
// written while it is ready.
func newDevSuperviseCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:    "supervise",
		Short:  "Run the local control plane in the foreground (started by 'shoal dev up')",
		Hidden: true,
		Args:   exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := devPathsOrErr()
			if err != nil {
				return err
			}
			return supervise(cmd.Context(), e, p)
		},
	}
}

func supervise(ctx context.Context, e *env, p devPaths) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Plain lines (no time or level): `shoal dev up` copies them to the user.
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	}))
	fmt.Fprintf(e.stderr, "=== shoal dev supervise (pid %d) started at %s ===\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	// One supervisor per directory: the lock is held until this process
	// exits (two 'shoal dev up' at once start one control plane).
	lock, err := os.OpenFile(p.lock(), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Close() }()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("another shoal dev supervisor runs in %s (%w); use 'shoal dev status' or 'shoal dev down'", p.dir, err)
	}
	// Its PID, for 'shoal dev down' while it starts (no state file yet).
	if err := lock.Truncate(0); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(lock, "%d\n", os.Getpid()); err != nil {
		return err
	}
	m, err := localmesh.Start(ctx, localmesh.WithLogDir(p.logs()), localmesh.WithLogger(logger))
	if err != nil {
		return err
	}
	defer func() {
		p.removeFiles()
		m.Stop()
		fmt.Fprintf(e.stderr, "=== shoal dev supervise (pid %d) stopped at %s ===\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	}()
	kc, err := os.ReadFile(m.Kubeconfig())
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.kubeconfig(), kc, 0o600); err != nil { //nolint:gosec // shoal dev's own directory
		return err
	}
	st := &devState{
		PID: os.Getpid(), Started: time.Now().UTC(), XDSAddress: m.IstiodAddr(0), XDSTLSAddress: m.IstiodTLSAddr(0),
		APIServer: m.RESTConfig().Host, Kubeconfig: p.kubeconfig(), LogDir: p.logs(),
	}
	for _, c := range m.Components() {
		st.Components = append(st.Components, devComponent{Name: c.Name, PID: c.PID})
	}
	// 'shoal dev deploy' runs workloads here, where the mesh is; they stop
	// before the control plane does.
	host := newWorkloadHost(m, logger, p)
	stopServing, err := host.serve(ctx, p.socket())
	if err != nil {
		return err
	}
	defer func() {
		stopServing()
		host.close(context.WithoutCancel(ctx))
	}()
	if err := writeDevState(p, st); err != nil {
		return err
	}
	names := make([]string, 0, len(st.Components))
	for _, c := range st.Components {
		names = append(names, c.Name)
	}
	fmt.Fprintf(e.stderr, "ready: %s; istiod at %s\n", strings.Join(names, ", "), st.XDSAddress)
	<-ctx.Done()
	fmt.Fprintln(e.stderr, "stopping the control plane")
	return nil
}
