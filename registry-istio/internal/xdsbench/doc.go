// Package xdsbench holds benchmarks that compare Shoal's xDS client with
// grpc-go's on the same management server input. It has no code of its own;
// it is a package so the comparison's extra imports (grpc-go's xds resolver)
// stay out of the packages users import.
//
// The benchmark leaves grpc-go's xDS client pool running until the process
// exits, so this package does not use goleak.
package xdsbench
