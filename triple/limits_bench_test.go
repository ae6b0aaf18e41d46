package triple_test

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// BenchmarkUnaryConcurrent measures what MAX_CONCURRENT_STREAMS costs:
// c callers share one connection, 64 B unary echo, with the default limit
// (1000) and with no practical limit. Past the limit the client waits for
// a free stream instead of being refused. Run with GOMAXPROCS=1 to keep
// the callers on one thread as in BenchmarkUnary.
func BenchmarkUnaryConcurrent(b *testing.B) {
	req := &testpb.EchoRequest{Payload: make([]byte, 64)}
	for _, limit := range []struct {
		name string
		opts []triple.ServerOption
	}{
		{"default-limit", nil},
		{"no-limit", []triple.ServerOption{triple.WithMaxConcurrentStreams(math.MaxUint32)}},
	} {
		for _, c := range []int{64, 1024, 4096} {
			b.Run(fmt.Sprintf("%s/c=%d", limit.name, c), func(b *testing.B) {
				client := testpbtriple.NewEchoServiceClient(dial(b, startServer(b, limit.opts, nil)))
				ctx := context.Background()
				b.SetParallelism(max(1, c/runtime.GOMAXPROCS(0))) // c callers in all
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := client.Echo(ctx, req); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
