// Package meshmetrics exports the mesh client's events as Prometheus
// metrics: Metrics implements the sdk's observer.Observer, so a consumer
// and router-mesh report endpoints per reference, outlier ejections,
// circuit-breaker overflows, retries and injected faults through it
// without importing a metrics library. The xDS client's own metrics (gRFC
// A78) come from registry-istio/xdsstatus.Collector.
package meshmetrics
