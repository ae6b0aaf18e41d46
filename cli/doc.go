// Package cli is the home of the shoal command-line tool. The command itself
// lives in cmd/shoal and is installed with
//
//	go install github.com/shoalmesh/shoal/cli/cmd/shoal@latest
//
// Its logic is in internal/command, behind a single Run function so that the
// whole tool can be tested in-process.
package cli
