package triple

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// BenchmarkRequestHeaderEncoding is what two Istio metadata exchange
// headers (a 320-byte value and a short one) cost a call's HEADERS frame
// once they sit in the HPACK dynamic table: encoded from a Metadata map on
// every call (what metadata in the call's context costs, and what
// RequestHeaders cost until it encoded once), and as RequestHeaders sends
// them now, fields prepared when the option is built.
func BenchmarkRequestHeaderEncoding(b *testing.B) {
	md := Metadata{
		"x-envoy-peer-metadata":    {strings.Repeat("ChwKDkFQUF9DT05UQUlORVJTEgoaCGV4YW1wbGU", 8)},
		"x-envoy-peer-metadata-id": {"sidecar~10.0.0.5~w-0.shop~shop.svc.cluster.local"},
	}
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	hf := func(k, v string) { _ = enc.WriteField(hpack.HeaderField{Name: k, Value: v}) }
	encodeMetadata(md, hf) // into the dynamic table, as after a connection's first call
	buf.Reset()
	b.Run("map-per-call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeMetadata(md, hf)
			buf.Reset()
		}
	})
	b.Run("RequestHeaders", func(b *testing.B) {
		opt := RequestHeaders(md)
		var cfg callConfig
		b.ReportAllocs()
		for b.Loop() {
			opt.applyCall(&cfg)
			for _, f := range cfg.requestHeaders {
				hf(f.Name, f.Value)
			}
			buf.Reset()
		}
	})
}
