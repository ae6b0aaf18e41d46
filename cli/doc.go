// Package cli is the home of the shoal command-line tool. The command itself
// lives in cmd/shoal; until the Shoal modules are released it is installed
// from a checkout with
//
//	go install ./cli/cmd/shoal
//
// Its logic is in internal/command, behind a single Run function that main
// calls, so the tests drive the real binary through the same entry point.
package cli
