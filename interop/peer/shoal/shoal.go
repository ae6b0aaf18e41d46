// Package shoal is the Shoal peer of the interop suite: a client and server
// of greet.GreetService on Shoal's triple module, written as a Shoal user
// would with the generated greettriple package, and of the plain Java
// interface GreetingService in wrapper mode with triple/hessian.
package shoal

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/interop/peer"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/triple"
)

const maxMsg = 16 << 20

// Server is a Shoal server of greet.GreetService.
type Server struct{}

// Name implements peer.Server.
func (Server) Name() string { return "shoal" }

// Supports implements peer.Server: Shoal reports what it saw and routes on
// Triple groups and versions.
func (Server) Supports(string) bool { return true }

// Start implements peer.Server: the service is exported plain and under
// peer.Group/peer.Version.
func (Server) Start(_ context.Context) (string, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := triple.NewServer(triple.WithMaxRecvMessageSize(maxMsg), triple.WithMaxSendMessageSize(maxMsg))
	h := &handler{servedBy: "shoal@" + lis.Addr().String()}
	if err := greettriple.RegisterGreetServiceHandler(s, h); err != nil {
		return "", nil, err
	}
	if err := greettriple.RegisterGreetServiceHandler(s, h, triple.ServiceGroup(peer.Group), triple.ServiceVersion(peer.Version)); err != nil {
		return "", nil, err
	}
	// GreetingService, the plain Java interface (wrapper mode), likewise.
	if err := greetingService().Register(s); err != nil {
		return "", nil, err
	}
	if err := greetingService().Register(s, triple.ServiceGroup(peer.Group), triple.ServiceVersion(peer.Version)); err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	}
	return lis.Addr().String(), stop, nil
}

type handler struct{ servedBy string }

// seen reports the attachments and the group and version of the call.
func seen(ctx context.Context) map[string]string {
	out := map[string]string{}
	if md, ok := triple.FromIncomingContext(ctx); ok {
		for k := range md {
			out[strings.ToLower(k)] = md.Get(k)
		}
	}
	if ci, ok := triple.CallInfoFromContext(ctx); ok {
		if ci.Group != "" {
			out["group"] = ci.Group
		}
		if ci.Version != "" {
			out["version"] = ci.Version
		}
	}
	return out
}

func reply(ctx context.Context, req *greet.GreetRequest, servedBy string) (*greet.GreetResponse, error) {
	resp, code, msg := peer.Reply(ctx, req, servedBy, seen(ctx))
	if resp == nil {
		return nil, triple.NewError(triple.Code(code), msg)
	}
	return resp, nil
}

func (h *handler) Greet(ctx context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	return reply(ctx, req, h.servedBy)
}

func (h *handler) GreetServerStream(req *greet.GreetRequest, s triple.ServerStreamServer[greet.GreetResponse]) error {
	for range max(req.GetCount(), 1) {
		resp, err := reply(s.Context(), req, h.servedBy)
		if err != nil {
			return err
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func (h *handler) GreetClientStream(s triple.ClientStreamServer[greet.GreetRequest, greet.GreetResponse]) error {
	var reqs []*greet.GreetRequest
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		reqs = append(reqs, req)
	}
	return s.SendAndClose(&greet.GreetResponse{Greeting: peer.JoinNames(reqs), ServedBy: h.servedBy, Seen: seen(s.Context())})
}

func (h *handler) GreetBidiStream(s triple.BidiStreamServer[greet.GreetRequest, greet.GreetResponse]) error {
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := reply(s.Context(), req, h.servedBy)
		if err != nil {
			return err
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

// Client is a Shoal client of greet.GreetService. Its zero value speaks
// gRPC; with Protocol set to triple.ProtocolTriple it makes its unary calls
// in dubbo-go's triple flavour (application/proto, Triple-Protocol-Version).
type Client struct{ Protocol triple.Protocol }

// Name implements peer.Client.
func (c Client) Name() string {
	if c.Protocol == triple.ProtocolTriple {
		return "shoal-triple"
	}
	return "shoal"
}

// Handles implements peer.Limited: the triple flavour has unary calls only.
// (Shoal would send a stream as gRPC, which the plain shoal client covers.)
func (c Client) Handles(k cases.Case) (bool, string) {
	if c.Protocol == triple.ProtocolTriple && !isWrapper(k.Method) && k.Method != cases.MethodUnary {
		return false, "the triple flavour (dubbo-go's connect-derived protocol) has no streaming calls; streams are gRPC, run by the shoal client"
	}
	return true, ""
}

// Run implements peer.Client.
func (c Client) Run(ctx context.Context, addr string, cs []cases.Case) ([]cases.Outcome, error) {
	cc, err := triple.Dial("tri://"+addr, triple.WithMaxRecvMessageSize(maxMsg), triple.WithMaxSendMessageSize(maxMsg),
		triple.WithProtocol(c.Protocol))
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	client := greettriple.NewGreetServiceClient(cc)
	out := make([]cases.Outcome, len(cs))
	for i, c := range cs {
		if isWrapper(c.Method) {
			out[i] = runWrapper(ctx, cc, c)
			continue
		}
		out[i] = run(ctx, client, c)
	}
	return out, nil
}

func run(ctx context.Context, client greettriple.GreetServiceClient, c cases.Case) cases.Outcome {
	ctx, cancel := context.WithTimeout(ctx, peer.CallTimeout(c))
	defer cancel()
	md := triple.Metadata{}
	for k, v := range c.Attachments {
		md.Set(k, v)
	}
	ctx = triple.NewOutgoingContext(ctx, md)
	opts := []triple.CallOption{triple.WithGroup(c.Group), triple.WithVersion(c.Version)}

	var o cases.Outcome
	record := func(r *greet.GreetResponse) { o.Responses = append(o.Responses, peer.NewResponse(r)) }
	err := func() error {
		switch c.Method {
		case cases.MethodUnary:
			r, err := client.Greet(ctx, peer.NewRequest(c.Requests[0]), opts...)
			if err != nil {
				return err
			}
			record(r)
		case cases.MethodServerStream:
			s, err := client.GreetServerStream(ctx, peer.NewRequest(c.Requests[0]), opts...)
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
			s, err := client.GreetClientStream(ctx, opts...)
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
			s, err := client.GreetBidiStream(ctx, opts...)
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
	o.Code = codes.Code(triple.CodeOf(err))
	if err != nil {
		var e *triple.Error
		if errors.As(err, &e) {
			o.Message = e.Message()
		} else {
			o.Message = err.Error()
		}
	}
	return o
}
