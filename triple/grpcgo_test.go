package triple_test

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	rpbalpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// grpc-go's generic client streams over a raw ClientConn: the test proto
// has no grpc-go stubs, so calls go through Invoke/NewStream with the same
// method names, which is all a grpc-go stub does.

func grpcConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

const echoSvc = "/shoal.triple.test.EchoService/"

func TestGRPCGoClientToShoalServer(t *testing.T) {
	conn := grpcConn(t, startServer(t, nil, nil))
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "x-tenant", "blue", "tri-service-group", "")

	t.Run("unary", func(t *testing.T) {
		var header, trailer metadata.MD
		resp := new(testpb.EchoResponse)
		if err := conn.Invoke(ctx, echoSvc+"Echo", &testpb.EchoRequest{Text: "hi"}, resp, grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
			t.Fatal(err)
		}
		if resp.GetText() != "hi" || resp.GetMetadata()["x-tenant"] != "blue" {
			t.Fatalf("resp = %v", resp)
		}
		if ct := header.Get("content-type"); len(ct) != 1 || !strings.HasPrefix(ct[0], "application/grpc") {
			t.Fatalf("content-type %v", ct)
		}
	})
	t.Run("error", func(t *testing.T) {
		err := conn.Invoke(ctx, echoSvc+"Echo", &testpb.EchoRequest{Text: "x", FailCode: 5}, new(testpb.EchoResponse))
		if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "failed as asked: x" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown service", func(t *testing.T) {
		err := conn.Invoke(ctx, "/no.Such/Thing", &testpb.EchoRequest{}, new(testpb.EchoResponse))
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("server stream", func(t *testing.T) {
		st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, echoSvc+"EchoServer")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SendMsg(&testpb.EchoRequest{Text: "s", Count: 3}); err != nil {
			t.Fatal(err)
		}
		_ = st.CloseSend()
		n := 0
		for {
			err := st.RecvMsg(new(testpb.EchoResponse))
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 3 {
			t.Fatalf("%d responses, want 3", n)
		}
	})
	t.Run("client stream", func(t *testing.T) {
		st, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, echoSvc+"EchoClient")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"a", "b"} {
			_ = st.SendMsg(&testpb.EchoRequest{Text: s})
		}
		_ = st.CloseSend()
		resp := new(testpb.EchoResponse)
		if err := st.RecvMsg(resp); err != nil || resp.GetText() != "a,b" {
			t.Fatalf("%v %v", resp, err)
		}
	})
	t.Run("bidi stream", func(t *testing.T) {
		st, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, echoSvc+"EchoBidi")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"x", "y"} {
			_ = st.SendMsg(&testpb.EchoRequest{Text: s})
			resp := new(testpb.EchoResponse)
			if err := st.RecvMsg(resp); err != nil || resp.GetText() != s {
				t.Fatalf("%v %v", resp, err)
			}
		}
		_ = st.CloseSend()
		if err := st.RecvMsg(new(testpb.EchoResponse)); !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	})
	t.Run("health", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "shoal.triple.test.EchoService"})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%v %v", resp, err)
		}
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("unknown service health: %v", err)
		}
	})
	t.Run("reflection v1", func(t *testing.T) {
		st, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = st.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}})
		resp, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		if !strings.Contains(strings.Join(names, " "), "shoal.triple.test.EchoService") {
			t.Fatalf("services %v", names)
		}
		_ = st.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "shoal.triple.test.EchoService"}})
		resp, err = st.Recv()
		if err != nil || len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
			t.Fatalf("file containing symbol: %v %v", resp, err)
		}
		_ = st.CloseSend()
	})
	t.Run("reflection v1alpha", func(t *testing.T) {
		st, err := rpbalpha.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = st.Send(&rpbalpha.ServerReflectionRequest{MessageRequest: &rpbalpha.ServerReflectionRequest_FileByFilename{FileByFilename: "echo.proto"}})
		resp, err := st.Recv()
		if err != nil || len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
			t.Fatalf("file by name: %v %v", resp, err)
		}
		_ = st.CloseSend()
	})
}

// grpcEcho is a grpc-go implementation of the Echo service, registered by
// hand (the test proto has no grpc-go stubs).
type grpcEcho struct{}

func grpcEchoDesc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "shoal.triple.test.EchoService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Echo", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			req := new(testpb.EchoRequest)
			if err := dec(req); err != nil {
				return nil, err
			}
			if req.GetFailCode() != 0 {
				return nil, status.Error(codes.Code(req.GetFailCode()), "grpc-go failed as asked")
			}
			md, _ := metadata.FromIncomingContext(ctx)
			seen := map[string]string{}
			for k, v := range md {
				if strings.HasSuffix(k, "-bin") {
					seen[k] = hex.EncodeToString([]byte(strings.Join(v, "")))
					continue
				}
				seen[k] = strings.Join(v, ",")
			}
			_ = grpc.SetHeader(ctx, metadata.Pairs("x-h", "1"))
			_ = grpc.SetTrailer(ctx, metadata.Pairs("x-t", "2"))
			return &testpb.EchoResponse{Text: req.GetText(), Payload: req.GetPayload(), Metadata: seen}, nil
		}}},
		Streams: []grpc.StreamDesc{
			{StreamName: "EchoServer", ServerStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
				req := new(testpb.EchoRequest)
				if err := st.RecvMsg(req); err != nil {
					return err
				}
				for range req.GetCount() {
					if err := st.SendMsg(&testpb.EchoResponse{Text: req.GetText()}); err != nil {
						return err
					}
				}
				return nil
			}},
			{StreamName: "EchoClient", ClientStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
				var texts []string
				for {
					req := new(testpb.EchoRequest)
					err := st.RecvMsg(req)
					if errors.Is(err, io.EOF) {
						return st.SendMsg(&testpb.EchoResponse{Text: strings.Join(texts, ",")})
					}
					if err != nil {
						return err
					}
					texts = append(texts, req.GetText())
				}
			}},
			{StreamName: "EchoBidi", ServerStreams: true, ClientStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
				for {
					req := new(testpb.EchoRequest)
					err := st.RecvMsg(req)
					if errors.Is(err, io.EOF) {
						return nil
					}
					if err != nil {
						return err
					}
					if err := st.SendMsg(&testpb.EchoResponse{Text: req.GetText()}); err != nil {
						return err
					}
				}
			}},
		},
	}
}

func TestShoalClientToGRPCGoServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	gs.RegisterService(grpcEchoDesc(), grpcEcho{})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	client := testpbtriple.NewEchoServiceClient(dial(t, lis.Addr().String()))
	ctx := triple.AppendToOutgoingContext(ctxT(t), "x-tenant", "green", "blob-bin", "\x00\xfe")

	var header, trailer triple.Metadata
	resp, err := client.Echo(ctx, &testpb.EchoRequest{Text: "to grpc-go", Payload: make([]byte, 1<<20)}, triple.Header(&header), triple.Trailer(&trailer),
		triple.WithGroup("g1"), triple.WithVersion("2.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	md := resp.GetMetadata()
	if resp.GetText() != "to grpc-go" || len(resp.GetPayload()) != 1<<20 || md["x-tenant"] != "green" ||
		md["tri-service-group"] != "g1" || md["tri-service-version"] != "2.0.0" || md["blob-bin"] != "00fe" {
		t.Fatalf("grpc-go saw %q", md)
	}
	if header.Get("x-h") != "1" || trailer.Get("x-t") != "2" {
		t.Fatalf("header %v trailer %v", header, trailer)
	}
	_, err = client.Echo(ctx, &testpb.EchoRequest{FailCode: int32(codes.AlreadyExists)})
	if triple.CodeOf(err) != triple.CodeAlreadyExists || !strings.Contains(err.Error(), "grpc-go failed as asked") {
		t.Fatalf("error from grpc-go: %v", err)
	}

	ss, err := client.EchoServer(ctx, &testpb.EchoRequest{Text: "s", Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("server stream: %d responses", n)
	}

	cs, err := client.EchoClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = cs.Send(&testpb.EchoRequest{Text: "p"})
	_ = cs.Send(&testpb.EchoRequest{Text: "q"})
	if r, err := cs.CloseAndRecv(); err != nil || r.GetText() != "p,q" {
		t.Fatalf("client stream: %v %v", r, err)
	}

	bs, err := client.EchoBidi(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"m", "n"} {
		_ = bs.Send(&testpb.EchoRequest{Text: s})
		if r, err := bs.Recv(); err != nil || r.GetText() != s {
			t.Fatalf("bidi: %v %v", r, err)
		}
	}
	_ = bs.CloseSend()
	if _, err := bs.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("bidi end: %v", err)
	}
}
