// Package grpcgo is the grpc-go peer of the interop suite: a plain grpc-go
// client and server of greet.GreetService, as a user of grpc-go would write
// them. Triple group and version travel as ordinary metadata
// (tri-service-group, tri-service-version), which is how a gRPC client talks
// to a Dubbo service group.
package grpcgo

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/interop/peer"
	"github.com/shoalmesh/shoal/proto/greet"
)

const maxMsg = 16 << 20

// Server is a grpc-go server of greet.GreetService.
type Server struct{}

// Name implements peer.Server.
func (Server) Name() string { return "grpc-go" }

// Supports implements peer.Server: grpc-go reports what it saw but knows
// nothing of Triple groups.
func (Server) Supports(need string) bool { return need == cases.NeedSeen }

// Start implements peer.Server.
func (Server) Start(_ context.Context) (string, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := grpc.NewServer(grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg))
	greet.RegisterGreetServiceServer(s, &service{servedBy: "grpc-go@" + lis.Addr().String()})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	return lis.Addr().String(), func() { s.Stop(); <-done }, nil
}

type service struct {
	greet.UnimplementedGreetServiceServer
	servedBy string
}

// seen reports the call's metadata with the Triple group and version under
// their short names, as the Java and Shoal providers do.
func seen(ctx context.Context) map[string]string {
	md, _ := metadata.FromIncomingContext(ctx)
	out := map[string]string{}
	for k, v := range md {
		if len(v) == 0 || strings.HasPrefix(k, ":") {
			continue
		}
		switch k {
		case "tri-service-group":
			out["group"] = v[0]
		case "tri-service-version":
			out["version"] = v[0]
		default:
			out[k] = v[0]
		}
	}
	return out
}

func (s *service) Greet(ctx context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	resp, code, msg := peer.Reply(ctx, req, s.servedBy, seen(ctx))
	if resp == nil {
		return nil, status.Error(code, msg)
	}
	return resp, nil
}

func (s *service) GreetServerStream(req *greet.GreetRequest, stream grpc.ServerStreamingServer[greet.GreetResponse]) error {
	n := max(req.GetCount(), 1)
	for range n {
		resp, code, msg := peer.Reply(stream.Context(), req, s.servedBy, seen(stream.Context()))
		if resp == nil {
			return status.Error(code, msg)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func (s *service) GreetClientStream(stream grpc.ClientStreamingServer[greet.GreetRequest, greet.GreetResponse]) error {
	var reqs []*greet.GreetRequest
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		reqs = append(reqs, req)
	}
	return stream.SendAndClose(&greet.GreetResponse{Greeting: peer.JoinNames(reqs), ServedBy: s.servedBy, Seen: seen(stream.Context())})
}

func (s *service) GreetBidiStream(stream grpc.BidiStreamingServer[greet.GreetRequest, greet.GreetResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, code, msg := peer.Reply(stream.Context(), req, s.servedBy, seen(stream.Context()))
		if resp == nil {
			return status.Error(code, msg)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// Client is a grpc-go client of greet.GreetService.
type Client struct{}

// Name implements peer.Client.
func (Client) Name() string { return "grpc-go" }

// Supports reports the client's features (see peer.Supports): grpc-go
// speaks protobuf only, not Dubbo's wrapper mode.
func (Client) Supports(need string) bool { return need != cases.NeedWrapper }

// Run implements peer.Client.
func (Client) Run(ctx context.Context, addr string, cs []cases.Case) ([]cases.Outcome, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	client := greet.NewGreetServiceClient(conn)
	out := make([]cases.Outcome, len(cs))
	for i, c := range cs {
		out[i] = run(ctx, client, c)
	}
	return out, nil
}

func run(ctx context.Context, client greet.GreetServiceClient, c cases.Case) cases.Outcome {
	ctx, cancel := context.WithTimeout(ctx, peer.CallTimeout(c))
	defer cancel()
	var kv []string
	for k, v := range c.Attachments {
		kv = append(kv, k, v)
	}
	if c.Group != "" {
		kv = append(kv, "tri-service-group", c.Group)
	}
	if c.Version != "" {
		kv = append(kv, "tri-service-version", c.Version)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, kv...)

	var o cases.Outcome
	record := func(r *greet.GreetResponse) { o.Responses = append(o.Responses, peer.NewResponse(r)) }
	err := func() error {
		switch c.Method {
		case cases.MethodUnary:
			r, err := client.Greet(ctx, peer.NewRequest(c.Requests[0]))
			if err != nil {
				return err
			}
			record(r)
		case cases.MethodServerStream:
			s, err := client.GreetServerStream(ctx, peer.NewRequest(c.Requests[0]))
			if err != nil {
				return err
			}
			for {
				r, err := s.Recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				record(r)
			}
		case cases.MethodClientStream:
			s, err := client.GreetClientStream(ctx)
			if err != nil {
				return err
			}
			for _, r := range c.Requests {
				if err := s.Send(peer.NewRequest(r)); err != nil {
					break // the status comes from CloseAndRecv
				}
			}
			r, err := s.CloseAndRecv()
			if err != nil {
				return err
			}
			record(r)
		case cases.MethodBidiStream:
			s, err := client.GreetBidiStream(ctx)
			if err != nil {
				return err
			}
			for _, r := range c.Requests {
				if err := s.Send(peer.NewRequest(r)); err != nil {
					break
				}
				resp, err := s.Recv()
				if err != nil {
					return err
				}
				record(resp)
			}
			if err := s.CloseSend(); err != nil {
				return err
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				return err
			}
		}
		return nil
	}()
	st := status.Convert(err)
	o.Code, o.Message = st.Code(), st.Message()
	return o
}
