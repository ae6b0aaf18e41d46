// Package bench measures Shoal side by side with plain grpc-go, a sidecar pair
// stand-in (two HAProxy HTTP/2 hops) and dubbo-go, on this machine, in one run,
// against the loopback floor (tcp-floor, a raw TCP ping-pong).
package bench
