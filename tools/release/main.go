package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/semver"
)

func main() {
	if err := runCommand(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func runCommand(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: shoalrelease check|pack|bump|sets|previous -root DIR [-out DIR]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	root := fs.String("root", ".", "repository root (holds versions.yaml)")
	out := fs.String("out", "", "pack: directory of the file-system module proxy to write")
	version := fs.String("version", "", "bump: the new version")
	only := fs.String("sets", "", "bump: comma-separated release sets to bump (default: all)")
	without := fs.String("without", "", "pack: a release set to pack only the tags of (the proxy gorelease uses for it)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	v, err := loadVersions(*root)
	if err != nil {
		return err
	}
	switch args[0] {
	case "check":
		if err := check(*root, v); err != nil {
			return fmt.Errorf("released modules are not installable as they stand:\n%w", err)
		}
		if err := checkDocs(*root, v); err != nil {
			return fmt.Errorf("install lines in the docs name other versions than versions.yaml:\n%w", err)
		}
		fmt.Fprintln(stdout, "go.mod of every released module: no replace, Shoal requires at released versions; docs name released versions")
		return nil
	case "pack":
		if *out == "" {
			return errors.New("pack: -out DIR is required")
		}
		return pack(*root, *out, v, *without)
	case "bump":
		var names []string
		if *only != "" {
			names = strings.Split(*only, ",")
		}
		return bump(*root, *version, names)
	case "sets":
		for _, s := range v.Sets {
			fmt.Fprintln(stdout, s.Name, s.Version)
		}
		return nil
	case "previous":
		// For each set: its version and the newest release tag older than
		// it ("none" when there is none), for gorelease.
		for _, s := range v.Sets {
			tags, err := releaseTags(*root, dir(s.Modules[0]))
			if err != nil {
				return err
			}
			prev := "none"
			for _, t := range tags {
				if semver.Compare(t, s.Version) < 0 {
					prev = t
				}
			}
			fmt.Fprintln(stdout, s.Name, s.Version, prev)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q; want check, pack, bump, sets or previous", args[0])
}
