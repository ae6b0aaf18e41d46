// Package samples holds runnable Shoal examples: each directory is a small
// program (server and client) that works with `go run`. See README.md.
package samples
