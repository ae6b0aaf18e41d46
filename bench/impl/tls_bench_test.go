package impl

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/triple"
)

// serveFor starts contender name on loopback for the benchmark.
func serveFor(b *testing.B, name string) string {
	b.Helper()
	im, err := Lookup(name)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- im.Serve(ctx, "127.0.0.1:0", func(a string) { bound <- a }) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("serve %s: %v", name, err)
		}
	})
	select {
	case a := <-bound:
		return a
	case err := <-done:
		b.Fatalf("serve %s: %v", name, err)
	case <-time.After(10 * time.Second):
		b.Fatalf("%s not ready after 10s", name)
	}
	return ""
}

// BenchmarkNewConnection is the cost of a new connection: dial, TLS
// handshake where the contender has one (mutual, P-256, the SPIFFE ID
// checked), the HTTP/2 setup and a first 64-byte call, then close. The
// client identity is loaded once, as a process does.
func BenchmarkNewConnection(b *testing.B) {
	src, err := source("client")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	cfg, err := clientTLS(src)
	if err != nil {
		b.Fatal(err)
	}
	req := &greet.GreetRequest{Payload: make([]byte, 64)}
	for _, tc := range []struct {
		name string
		call func(ctx context.Context, addr string) error
	}{
		{"shoal", func(ctx context.Context, addr string) error { return shoalOnce(ctx, addr, req) }},
		{"shoal-mtls", func(ctx context.Context, addr string) error { return shoalOnce(ctx, addr, req, triple.WithTLS(cfg)) }},
		{"grpc-go", func(ctx context.Context, addr string) error {
			return grpcOnce(ctx, addr, req, grpc.WithTransportCredentials(insecure.NewCredentials()))
		}},
		{"grpc-go-tls", func(ctx context.Context, addr string) error {
			return grpcOnce(ctx, addr, req, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			addr := serveFor(b, tc.name)
			ctx := context.Background()
			for b.Loop() {
				if err := tc.call(ctx, addr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func shoalOnce(ctx context.Context, addr string, req *greet.GreetRequest, opts ...triple.ClientOption) error {
	cc, err := triple.Dial("tri://"+addr, opts...)
	if err != nil {
		return err
	}
	_, err = greettriple.NewGreetServiceClient(cc).Greet(ctx, req)
	_ = cc.Close()
	return err
}

func grpcOnce(ctx context.Context, addr string, req *greet.GreetRequest, opts ...grpc.DialOption) error {
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return err
	}
	_, err = greet.NewGreetServiceClient(conn).Greet(ctx, req)
	_ = conn.Close()
	return err
}

// BenchmarkTLSHandshake is crypto/tls alone with the identity's client
// and server configurations (TLS 1.3, P-256, client certificate, SPIFFE
// checks), over loopback TCP: the floor both stacks share.
func BenchmarkTLSHandshake(b *testing.B) {
	srvSrc, err := source("server")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srvSrc.Close() }()
	cliSrc, err := source("client")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cliSrc.Close() }()
	cliCfg, err := clientTLS(cliSrc)
	if err != nil {
		b.Fatal(err)
	}
	srvCfg := srvSrc.ServerTLSConfig(nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(nc, srvCfg)
				if tc.Handshake() == nil {
					_, _ = tc.Write([]byte{1}) // the client reads it: the handshake is complete both ways
				}
				_ = tc.Close()
			}()
		}
	}()
	defer func() {
		_ = lis.Close()
		<-done
	}()
	one := make([]byte, 1)
	for b.Loop() {
		nc, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		tc := tls.Client(nc, cliCfg)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		if _, err := tc.Read(one); err != nil {
			b.Fatal(err)
		}
		_ = tc.Close()
	}
}
