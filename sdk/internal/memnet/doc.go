// Package memnet is an in-memory network for the sdk's tests: servers
// that implement provider.Server and a transport that implements
// consumer.Transport, joined by address, with no sockets.
package memnet
