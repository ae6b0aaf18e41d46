package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// NewOTLPTracerProvider returns an OpenTelemetry SDK TracerProvider that
// batches spans to an OTLP collector, configured the standard way, by
// environment variables: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL chooses the transport, "http/protobuf"
// (the specification's default, port 4318) or "grpc" (port 4317);
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
// OTEL_EXPORTER_OTLP_INSECURE, OTEL_EXPORTER_OTLP_HEADERS and the other
// exporter variables; OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// (default: always on, following the parent's decision);
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES for the resource. Shut
// it down on exit to flush the last spans.
func NewOTLPTracerProvider(ctx context.Context) (*sdktrace.TracerProvider, error) {
	exp, err := newOTLPExporter(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.Environment())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// OTLPProtocol is the OTLP transport the environment asks for traces:
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL,
// else "http/protobuf".
func OTLPProtocol() string {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	return "http/protobuf"
}

func newOTLPExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch p := OTLPProtocol(); p {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: OTLP protocol %q (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL) is not supported; use grpc or http/protobuf", p)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w; check the OTEL_EXPORTER_OTLP_* variables", err)
	}
	return exp, nil
}
