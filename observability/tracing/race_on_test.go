//go:build race

package tracing

// raceOn: the race detector changes allocation counts.
const raceOn = true
