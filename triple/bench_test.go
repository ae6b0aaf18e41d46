package triple_test

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// BenchmarkUnary compares a unary echo over loopback TCP, client and server
// in this process: Shoal's triple against grpc-go, with 64 B and 1 KiB
// payloads. Run with -benchmem; for latency use separate processes
// (bench/cmd/shoalbench).
func BenchmarkUnary(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"64B", 64}, {"1KiB", 1024}} {
		req := &testpb.EchoRequest{Payload: make([]byte, size.n)}
		b.Run("shoal/"+size.name, func(b *testing.B) {
			client := testpbtriple.NewEchoServiceClient(dial(b, startServer(b, nil, nil)))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Echo(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("grpc-go/"+size.name, func(b *testing.B) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			gs := grpc.NewServer()
			gs.RegisterService(grpcEchoDesc(), grpcEcho{})
			go func() { _ = gs.Serve(lis) }()
			defer gs.Stop()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			ctx := context.Background()
			resp := new(testpb.EchoResponse)
			b.ReportAllocs()
			for b.Loop() {
				if err := conn.Invoke(ctx, echoSvc+"Echo", req, resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
