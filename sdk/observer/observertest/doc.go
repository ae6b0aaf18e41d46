// Package observertest holds Recorder, an in-process fake observer.Observer
// for unit tests: it counts the events it is told about, so a test can
// check that an ejection, an overflow, a retry or a fault was reported
// exactly as often as it happened.
package observertest
