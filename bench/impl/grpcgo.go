package impl

import (
	"bytes"
	"context"
	"errors"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoalmesh/shoal/proto/greet"
)

func init() {
	Register(Impl{Name: "grpc-go", Serve: serveGRPC, Dial: dialGRPC})
}

type grpcEcho struct {
	greet.UnimplementedGreetServiceServer
}

func (grpcEcho) Greet(_ context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	return &greet.GreetResponse{Payload: req.GetPayload()}, nil
}

func serveGRPC(ctx context.Context, addr string, ready func(string)) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	greet.RegisterGreetServiceServer(s, grpcEcho{})
	go func() {
		<-ctx.Done()
		s.Stop()
	}()
	ready(lis.Addr().String())
	return s.Serve(lis)
}

type grpcCaller struct {
	conn   *grpc.ClientConn
	client greet.GreetServiceClient
}

func dialGRPC(target string) (Caller, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &grpcCaller{conn: conn, client: greet.NewGreetServiceClient(conn)}, nil
}

func (c *grpcCaller) Call(ctx context.Context, payload []byte) error {
	resp, err := c.client.Greet(ctx, &greet.GreetRequest{Payload: payload})
	if err != nil {
		return err
	}
	return checkEcho(payload, resp.GetPayload())
}

func (c *grpcCaller) Close() error { return c.conn.Close() }

var errEcho = errors.New("impl: the server did not echo the payload")

func checkEcho(sent, got []byte) error {
	if !bytes.Equal(sent, got) {
		return errEcho
	}
	return nil
}
