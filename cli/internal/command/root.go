package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoalmesh/shoal/triple"
)

// Exit codes returned by Run. `shoal call`, `list` and `describe` exit with
// the gRPC status code of a call that failed (1 to 16) instead of ExitError.
const (
	ExitOK          = 0  // the command succeeded
	ExitError       = 1  // the command ran and failed
	ExitUsage       = 64 // the command line was wrong (sysexits EX_USAGE)
	ExitData        = 65 // the input data was wrong, e.g. a request that is not valid JSON (EX_DATAERR)
	ExitMissingTool = 69 // a program the command needs is not installed (EX_UNAVAILABLE)
)

// exitError carries the exit code an error should end the process with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

func dataErrorf(format string, args ...any) error {
	return &exitError{code: ExitData, err: fmt.Errorf(format, args...)}
}

// env is what every command works with.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// Run executes the shoal command line args (without the program name) and
// returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	name := "shoal"
	if cmd != nil && cmd != root {
		name = cmd.CommandPath()
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	if code == ExitUsage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var te *triple.Error
	if errors.As(err, &te) && te.Code() != 0 {
		return int(te.Code())
	}
	// cobra's own complaints about the command line.
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "requires at most"} {
		if strings.HasPrefix(msg, p) {
			return ExitUsage
		}
	}
	return ExitError
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "shoal",
		Short: "The command-line tool of the Shoal proxyless service mesh",
		Long: `The shoal command is the command-line tool of the Shoal proxyless service mesh for Go:
it scaffolds applications, generates Triple code from .proto files, calls and
inspects Triple and gRPC services through server reflection, runs a local
Istio control plane (shoal dev), and checks the machine for what Shoal
development needs.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// No arguments: show the help and fail, so scripts notice.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q; run 'shoal help' for the list", args[0])
			}
			cmd.SetOut(e.stderr)
			_ = cmd.Help()
			return usageErrorf("no command given")
		},
		Args: cobra.ArbitraryArgs,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, err: err}
	})
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(_ *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usageErrorf("unknown command %q; run 'shoal help' for the list", strings.Join(args, " "))
			}
			return c.Help()
		},
	})
	root.AddCommand(
		newVersionCmd(e),
		newCallCmd(e),
		newListCmd(e),
		newDescribeCmd(e),
		newNewCmd(e),
		newGenCmd(e),
		newToolsCmd(e),
		newDoctorCmd(e),
		newDevCmd(e),
		newShowCmd(e),
		newStatusCmd(e),
		newAnalyzeCmd(e),
	)
	return root
}

// exactArgs is cobra.ExactArgs with a usage error that names the arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("want %s, got %d argument(s)", names, len(args))
		}
		return nil
	}
}

// rangeArgs accepts min to max arguments.
func rangeArgs(minN, maxN int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < minN || len(args) > maxN {
			return usageErrorf("want %s, got %d argument(s)", names, len(args))
		}
		return nil
	}
}
