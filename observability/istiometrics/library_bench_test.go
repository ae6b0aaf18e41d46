package istiometrics

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// The library benchmarks record what one unary call records (a request
// count, a duration, request and response sizes, one message each way)
// with Istio's full label set, once through prometheus/client_golang and
// once through the OpenTelemetry SDK with its Prometheus exporter, each
// used the fastest way its API allows. DESIGN.md has the figures.

func benchLabels() ([]string, []string) {
	names := labelNames[:]
	values := make([]string, len(names))
	for i, n := range names {
		values[i] = n + "-value"
	}
	return names, values
}

func BenchmarkLibraryPrometheusCachedSeries(b *testing.B) {
	names, values := benchLabels()
	reg := prometheus.NewRegistry()
	in := newInstruments()
	_ = reg
	s := in.series(values)
	_ = names
	b.ReportAllocs()
	for b.Loop() {
		s.record(0.8, 120, 140, 1, 1)
	}
}

func BenchmarkLibraryPrometheusLabelValuesPerCall(b *testing.B) {
	_, values := benchLabels()
	reg := prometheus.NewRegistry()
	in := newInstruments()
	_ = reg
	b.ReportAllocs()
	for b.Loop() {
		in.series(values).record(0.8, 120, 140, 1, 1)
	}
}

func BenchmarkLibraryOTelAttributeSet(b *testing.B) {
	names, values := benchLabels()
	exp, err := otelprom.New(otelprom.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	m := mp.Meter("shoal")
	reqs, _ := m.Int64Counter(RequestsTotal)
	dur, _ := m.Float64Histogram(RequestDuration, metric.WithExplicitBucketBoundaries(DurationBuckets...))
	reqBytes, _ := m.Int64Histogram(RequestBytes, metric.WithExplicitBucketBoundaries(BytesBuckets...))
	respBytes, _ := m.Int64Histogram(ResponseBytes, metric.WithExplicitBucketBoundaries(BytesBuckets...))
	reqMsgs, _ := m.Int64Counter(RequestMessagesTotal)
	respMsgs, _ := m.Int64Counter(ResponseMessagesTotal)
	kvs := make([]attribute.KeyValue, len(names))
	for i := range names {
		kvs[i] = attribute.String(names[i], values[i])
	}
	set := attribute.NewSet(kvs...)
	// Built once and reused, the cheapest way the API allows.
	addOpt := []metric.AddOption{metric.WithAttributeSet(set)}
	recOpt := []metric.RecordOption{metric.WithAttributeSet(set)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		reqs.Add(ctx, 1, addOpt...)
		dur.Record(ctx, 0.8, recOpt...)
		reqBytes.Record(ctx, 120, recOpt...)
		respBytes.Record(ctx, 140, recOpt...)
		reqMsgs.Add(ctx, 1, addOpt...)
		respMsgs.Add(ctx, 1, addOpt...)
	}
}
