// Package promtest runs a real Prometheus server for tests: Debian's
// prometheus package (installed by make deps), started on a free loopback
// port with a scrape configuration naming the test's applications, and
// stopped when the test ends. Queries go through Prometheus's HTTP API, so
// a test checks what PromQL, and therefore a dashboard, would see.
package promtest
