// Package testpb holds the Echo service that triple's tests, examples and
// benchmarks call, with its generated messages and Triple stubs (testpbtriple).
package testpb

//go:generate protoc -I. --go_out=. --go_opt=paths=source_relative --go-triple_out=. --go-triple_opt=paths=source_relative echo.proto
