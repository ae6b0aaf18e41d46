// Package command implements the shoal command-line tool on cobra behind a
// single Run function, so that main stays a thin shell and tests drive every
// command through the same entry point.
package command
