// Package command implements the shoal command-line tool behind a single Run
// function, so that main stays a thin shell and tests can drive every command
// in-process.
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
)

// Exit codes returned by Run.
const (
	ExitOK    = 0 // the command succeeded
	ExitError = 1 // the command ran and failed
	ExitUsage = 2 // the command line was wrong
)

// errUsage marks errors caused by a wrong command line.
var errUsage = errors.New("usage")

// env is what a command gets to work with.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type cmd struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func commands() map[string]cmd {
	cs := []cmd{
		{name: "version", summary: "print the version of shoal and of the Shoal modules it was built with", run: runVersion},
		{name: "help", summary: "show help for shoal or for a command", run: nil},
	}
	m := make(map[string]cmd, len(cs))
	for _, c := range cs {
		m[c.name] = c
	}
	return m
}

// Run executes the shoal command line args (without the program name) and
// returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr}
	cs := commands()
	if len(args) == 0 {
		usage(stderr, cs)
		return ExitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			usage(stdout, cs)
			return ExitOK
		}
		c, ok := cs[rest[0]]
		if !ok {
			fmt.Fprintf(stderr, "shoal help: unknown command %q; run 'shoal help' for the list\n", rest[0])
			return ExitUsage
		}
		fmt.Fprintf(stdout, "shoal %s: %s\n", c.name, c.summary)
		return ExitOK
	}
	c, ok := cs[name]
	if !ok || c.run == nil {
		fmt.Fprintf(stderr, "shoal: unknown command %q; run 'shoal help' for the list\n", name)
		return ExitUsage
	}
	if err := c.run(ctx, e, rest); err != nil {
		fmt.Fprintf(stderr, "shoal %s: %v\n", name, err)
		if errors.Is(err, errUsage) {
			return ExitUsage
		}
		return ExitError
	}
	return ExitOK
}

func usage(w io.Writer, cs map[string]cmd) {
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("shoal is the command-line tool of the Shoal proxyless service mesh.\n\nUsage:\n\n\tshoal <command> [arguments]\n\nCommands:\n\n")
	for _, n := range names {
		fmt.Fprintf(&b, "\t%-10s %s\n", n, cs[n].summary)
	}
	b.WriteString("\nRun 'shoal help <command>' for more about a command.\n")
	_, _ = io.WriteString(w, b.String())
}

func runVersion(_ context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	verbose := fs.Bool("m", false, "also list the Shoal modules and their versions")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("no build information in this binary; build it with module support (go build or go install)")
	}
	fmt.Fprintf(e.stdout, "shoal %s (%s)\n", moduleVersion(info.Main), info.GoVersion)
	if *verbose {
		for _, d := range info.Deps {
			if strings.HasPrefix(d.Path, "github.com/shoalmesh/shoal/") {
				fmt.Fprintf(e.stdout, "\t%s %s\n", d.Path, moduleVersion(*d))
			}
		}
	}
	return nil
}

func moduleVersion(m debug.Module) string {
	if m.Replace != nil {
		m = *m.Replace
	}
	if m.Version == "" {
		return "(devel)"
	}
	return m.Version
}
