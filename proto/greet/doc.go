// Package greet holds the generated Go code of greet.proto, the Greet service
// shared by Shoal's samples, interop suite, demo and benchmarks: protobuf
// messages, grpc-go stubs and Shoal Triple stubs. Java Dubbo generates its
// own code from the same file (samples/java).
package greet

//go:generate protoc -I. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-triple_out=. --go-triple_opt=paths=source_relative greet.proto
