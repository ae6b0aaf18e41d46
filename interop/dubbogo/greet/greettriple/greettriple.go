// Package greettriple binds greet.GreetService to dubbo-go v3.3.2's Triple
// API (client.Connection, server.ServiceInfo): the code protoc-gen-go-triple
// 3.3.2 would generate for proto/greet/greet.proto.
//
// It is written by hand because that generator cannot be fetched here: its
// module, dubbo.apache.org/dubbo-go/v3/tools/protoc-gen-go-triple, is tagged
// v3.3.2, which Go rejects for a module path without a /v3 suffix, so the
// module proxy has nothing to serve (a 404 answer makes the go command fall
// back to the vanity host, which is unreachable) and its v1.x versions answer
// 403. The legacy generator (github.com/dubbogo/tools, gen.sh) does build,
// but emits dubbo-go 3.0 stubs for github.com/dubbogo/triple, not this API.
// Replace this file with generated code once the generator can be pinned in
// tools/go.mod.
package greettriple

import (
	"context"

	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	tri "dubbo.apache.org/dubbo-go/v3/protocol/triple/triple_protocol"
	"dubbo.apache.org/dubbo-go/v3/server"

	"github.com/shoalmesh/shoal/interop/dubbogo/greet"
)

// ServiceName is the Triple service name: proto package + service.
const ServiceName = "greet.GreetService"

// Method names, exactly as in the .proto.
const (
	MethodGreet             = "Greet"
	MethodGreetServerStream = "GreetServerStream"
	MethodGreetClientStream = "GreetClientStream"
	MethodGreetBidiStream   = "GreetBidiStream"
)

// Handler implements greet.GreetService on a dubbo-go server.
type Handler interface {
	Greet(ctx context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error)
	GreetServerStream(ctx context.Context, req *greet.GreetRequest, s *tri.ServerStream) error
	GreetClientStream(ctx context.Context, s *tri.ClientStream) (*greet.GreetResponse, error)
	GreetBidiStream(ctx context.Context, s *tri.BidiStream) error
}

// Register exports h on srv; opts carry the group and version.
func Register(srv *server.Server, h Handler, opts ...server.ServiceOption) error {
	return srv.Register(h, &ServiceInfo, opts...)
}

// ServiceInfo describes greet.GreetService to dubbo-go's server.
var ServiceInfo = common.ServiceInfo{
	InterfaceName: ServiceName,
	ServiceType:   (*Handler)(nil),
	Methods: []common.MethodInfo{
		{
			Name:        MethodGreet,
			Type:        constant.CallUnary,
			ReqInitFunc: func() any { return new(greet.GreetRequest) },
			MethodFunc: func(ctx context.Context, args []any, h any) (any, error) {
				resp, err := h.(Handler).Greet(ctx, args[0].(*greet.GreetRequest))
				if err != nil {
					return nil, err
				}
				return tri.NewResponse(resp), nil
			},
		},
		{
			Name:           MethodGreetServerStream,
			Type:           constant.CallServerStream,
			ReqInitFunc:    func() any { return new(greet.GreetRequest) },
			StreamInitFunc: func(s any) any { return s },
			MethodFunc: func(ctx context.Context, args []any, h any) (any, error) {
				return nil, h.(Handler).GreetServerStream(ctx, args[0].(*greet.GreetRequest), args[1].(*tri.ServerStream))
			},
		},
		{
			Name:           MethodGreetClientStream,
			Type:           constant.CallClientStream,
			StreamInitFunc: func(s any) any { return s },
			MethodFunc: func(ctx context.Context, args []any, h any) (any, error) {
				resp, err := h.(Handler).GreetClientStream(ctx, args[0].(*tri.ClientStream))
				if err != nil {
					return nil, err
				}
				return tri.NewResponse(resp), nil
			},
		},
		{
			Name:           MethodGreetBidiStream,
			Type:           constant.CallBidiStream,
			StreamInitFunc: func(s any) any { return s },
			MethodFunc: func(ctx context.Context, args []any, h any) (any, error) {
				return nil, h.(Handler).GreetBidiStream(ctx, args[0].(*tri.BidiStream))
			},
		},
	},
}

// ClientInfo describes greet.GreetService to dubbo-go's client.
var ClientInfo = client.ClientInfo{
	InterfaceName: ServiceName,
	MethodNames:   []string{MethodGreet, MethodGreetServerStream, MethodGreetClientStream, MethodGreetBidiStream},
}

// Client calls greet.GreetService through a dubbo-go client.Connection.
type Client struct{ conn *client.Connection }

// NewClient dials greet.GreetService; opts carry URL, group and version.
func NewClient(cli *client.Client, opts ...client.ReferenceOption) (*Client, error) {
	conn, err := cli.DialWithInfo(ServiceName, &ClientInfo, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn}, nil
}

// Greet is the unary call.
func (c *Client) Greet(ctx context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	resp := new(greet.GreetResponse)
	if err := c.conn.CallUnary(ctx, []any{req}, resp, MethodGreet); err != nil {
		return nil, err
	}
	return resp, nil
}

// GreetServerStream opens the server stream.
func (c *Client) GreetServerStream(ctx context.Context, req *greet.GreetRequest) (*tri.ServerStreamForClient, error) {
	s, err := c.conn.CallServerStream(ctx, req, MethodGreetServerStream)
	if err != nil {
		return nil, err
	}
	return s.(*tri.ServerStreamForClient), nil
}

// GreetClientStream opens the client stream.
func (c *Client) GreetClientStream(ctx context.Context) (*tri.ClientStreamForClient, error) {
	s, err := c.conn.CallClientStream(ctx, MethodGreetClientStream)
	if err != nil {
		return nil, err
	}
	return s.(*tri.ClientStreamForClient), nil
}

// GreetBidiStream opens the bidi stream.
func (c *Client) GreetBidiStream(ctx context.Context) (*tri.BidiStreamForClient, error) {
	s, err := c.conn.CallBidiStream(ctx, MethodGreetBidiStream)
	if err != nil {
		return nil, err
	}
	return s.(*tri.BidiStreamForClient), nil
}
