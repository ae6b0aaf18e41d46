// Package echotest is a hand-written Triple echo service (unary Echo,
// bidi Chat) for the module's tests, so they need no generated code, and
// helpers that start a provider and a consumer of it on loopback.
package echotest
