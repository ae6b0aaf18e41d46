package echotest

import (
	"context"
	"errors"
	"io"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/triple"
)

// Service is the service name.
const Service = "test.Echo"

type echoer interface {
	Echo(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
}

// Desc describes the service; register it with an Impl.
var Desc = triple.ServiceDesc{
	ServiceName: Service,
	HandlerType: (*echoer)(nil),
	Streams: []triple.StreamDesc{{
		StreamName: "Chat", ClientStreams: true, ServerStreams: true,
		Handler: func(_ any, stream triple.ServerStream) error {
			for {
				m := new(wrapperspb.StringValue)
				if err := stream.RecvMsg(m); errors.Is(err, io.EOF) {
					return nil
				} else if err != nil {
					return err
				}
				if err := stream.SendMsg(wrapperspb.String(m.GetValue() + "!")); err != nil {
					return err
				}
			}
		},
	}},
	Methods: []triple.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic triple.UnaryServerInterceptor) (any, error) {
			req := new(wrapperspb.StringValue)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				return srv.(echoer).Echo(ctx, req.(*wrapperspb.StringValue))
			}
			if ic == nil {
				return h(ctx, req)
			}
			return ic(ctx, req, &triple.UnaryServerInfo{Server: srv, FullMethod: "/test.Echo/Echo"}, h)
		},
	}},
}

// Impl answers Echo with its input; "fail" fails with NOT_FOUND.
type Impl struct{}

// Echo implements the unary method.
func (Impl) Echo(_ context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	if req.GetValue() == "fail" {
		return nil, triple.NewError(triple.Code(call.NotFound), "no such greeting")
	}
	return wrapperspb.String(req.GetValue()), nil
}
