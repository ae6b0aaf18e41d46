// Package observer is the mesh client's event hook: the consumer reports
// its endpoints, and a routing engine (router-mesh) reports outlier
// ejections, circuit-breaker overflows, retries and injected faults, to an
// Observer the application supplies. The sdk defines only the interface;
// the observability module turns the events into Prometheus metrics, so
// neither sdk nor router-mesh depends on a metrics library.
package observer
