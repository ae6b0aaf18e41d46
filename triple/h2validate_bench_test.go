package triple

import (
	"testing"

	"golang.org/x/net/http2/hpack"
)

// BenchmarkCheckRequest is what checking a request's header block costs
// the server per call (RFC 9113 8.1-8.3, h2validate.go): the fields a
// Shoal client sends on a unary call with a deadline and a group, and a
// grpc-go client's.
func BenchmarkCheckRequest(b *testing.B) {
	for _, c := range []struct {
		name   string
		fields []string
	}{
		{"shoal", []string{
			":method", "POST", ":scheme", "http", ":path", "/greet.GreetService/Greet", ":authority", "127.0.0.1:50051",
			"content-type", "application/grpc+proto", "te", "trailers", "user-agent", "shoal-triple/0.2.0",
			"grpc-accept-encoding", "gzip", "grpc-timeout", "2999871u", "tri-service-group", "g1",
		}},
		{"grpc-go", []string{
			":method", "POST", ":scheme", "http", ":path", "/greet.GreetService/Greet", ":authority", "127.0.0.1:50051",
			"content-type", "application/grpc", "user-agent", "grpc-go/1.85.0", "te", "trailers", "grpc-timeout", "2999871u",
		}},
	} {
		var fields []hpack.HeaderField
		for i := 0; i+1 < len(c.fields); i += 2 {
			fields = append(fields, hpack.HeaderField{Name: c.fields[i], Value: c.fields[i+1]})
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := checkRequest(fields); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
