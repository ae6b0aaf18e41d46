//go:build !race

package tracing

const raceOn = false
