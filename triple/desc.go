package triple

import "context"

// ServiceDesc describes a service for Server.Register; protoc-gen-go-triple
// generates one per service. Its shape follows grpc-go's so that the glue
// reads the same.
type ServiceDesc struct {
	// ServiceName is the full name, e.g. "greet.GreetService".
	ServiceName string
	// HandlerType is a pointer to the service interface, for a type check.
	HandlerType any
	Methods     []MethodDesc
	Streams     []StreamDesc
	// Metadata is the .proto file name, for reflection.
	Metadata string
}

// MethodDesc describes a unary method.
type MethodDesc struct {
	MethodName string
	Handler    MethodHandler
}

// MethodHandler decodes the request with dec, then calls the implementation
// srv through interceptor (which may be nil).
type MethodHandler func(srv any, ctx context.Context, dec func(any) error, interceptor UnaryServerInterceptor) (any, error)

// StreamDesc describes a streaming method.
type StreamDesc struct {
	StreamName    string
	Handler       StreamHandler
	ServerStreams bool
	ClientStreams bool
}

// StreamHandler runs a streaming method of srv on stream.
type StreamHandler func(srv any, stream ServerStream) error

// ServerStream is the server side of a streaming call.
type ServerStream interface {
	Context() context.Context
	// SetHeader adds response headers, sent with the first message or
	// SendHeader; SendHeader sends them now.
	SetHeader(Metadata) error
	SendHeader(Metadata) error
	// SetTrailer adds response trailers, sent when the handler returns.
	SetTrailer(Metadata)
	SendMsg(m any) error
	RecvMsg(m any) error
}

// ClientStream is the client side of a streaming call.
type ClientStream interface {
	Context() context.Context
	// Header waits for the response headers.
	Header() (Metadata, error)
	// Trailer returns the trailers once RecvMsg has returned io.EOF or an error.
	Trailer() Metadata
	SendMsg(m any) error
	// CloseSend ends the request stream.
	CloseSend() error
	// RecvMsg receives the next message; io.EOF marks a successful end.
	RecvMsg(m any) error
}

// Invoker is what generated clients call through: a ClientConn to one
// endpoint implements it, and so does the sdk's service reference that
// routes and balances over many.
type Invoker interface {
	// Invoke makes a unary call of method ("/service/Method").
	Invoke(ctx context.Context, method string, req, reply any, opts ...CallOption) error
	// NewStream opens a streaming call.
	NewStream(ctx context.Context, desc *StreamDesc, method string, opts ...CallOption) (ClientStream, error)
}

// UnaryServerInfo describes a unary call to interceptors.
type UnaryServerInfo struct {
	Server     any
	FullMethod string
}

// UnaryHandler is the next step of a unary call on the server.
type UnaryHandler func(ctx context.Context, req any) (any, error)

// UnaryServerInterceptor wraps unary calls on the server.
type UnaryServerInterceptor func(ctx context.Context, req any, info *UnaryServerInfo, handler UnaryHandler) (any, error)

// StreamServerInfo describes a streaming call to interceptors.
type StreamServerInfo struct {
	FullMethod     string
	IsClientStream bool
	IsServerStream bool
}

// StreamServerInterceptor wraps streaming calls on the server.
type StreamServerInterceptor func(srv any, ss ServerStream, info *StreamServerInfo, handler StreamHandler) error

// UnaryInvoker is the next step of a unary call on the client.
type UnaryInvoker func(ctx context.Context, method string, req, reply any, opts ...CallOption) error

// UnaryClientInterceptor wraps unary calls on the client.
type UnaryClientInterceptor func(ctx context.Context, method string, req, reply any, invoker UnaryInvoker, opts ...CallOption) error

// Streamer is the next step of opening a stream on the client.
type Streamer func(ctx context.Context, desc *StreamDesc, method string, opts ...CallOption) (ClientStream, error)

// StreamClientInterceptor wraps stream creation on the client.
type StreamClientInterceptor func(ctx context.Context, desc *StreamDesc, method string, streamer Streamer, opts ...CallOption) (ClientStream, error)

func chainUnaryServer(ics []UnaryServerInterceptor) UnaryServerInterceptor {
	switch len(ics) {
	case 0:
		return nil
	case 1:
		return ics[0]
	}
	return func(ctx context.Context, req any, info *UnaryServerInfo, handler UnaryHandler) (any, error) {
		return ics[0](ctx, req, info, bindUnaryServer(ics[1:], info, handler))
	}
}

func bindUnaryServer(ics []UnaryServerInterceptor, info *UnaryServerInfo, final UnaryHandler) UnaryHandler {
	if len(ics) == 0 {
		return final
	}
	return func(ctx context.Context, req any) (any, error) {
		return ics[0](ctx, req, info, bindUnaryServer(ics[1:], info, final))
	}
}

func chainStreamServer(ics []StreamServerInterceptor) StreamServerInterceptor {
	if len(ics) == 0 {
		return nil
	}
	return func(srv any, ss ServerStream, info *StreamServerInfo, handler StreamHandler) error {
		next := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, inner := ics[i], next
			next = func(srv any, ss ServerStream) error { return ic(srv, ss, info, inner) }
		}
		return next(srv, ss)
	}
}

func chainUnaryClient(ics []UnaryClientInterceptor, final UnaryInvoker) UnaryInvoker {
	next := final
	for i := len(ics) - 1; i >= 0; i-- {
		ic, inner := ics[i], next
		next = func(ctx context.Context, method string, req, reply any, opts ...CallOption) error {
			return ic(ctx, method, req, reply, inner, opts...)
		}
	}
	return next
}

func chainStreamClient(ics []StreamClientInterceptor, final Streamer) Streamer {
	next := final
	for i := len(ics) - 1; i >= 0; i-- {
		ic, inner := ics[i], next
		next = func(ctx context.Context, desc *StreamDesc, method string, opts ...CallOption) (ClientStream, error) {
			return ic(ctx, desc, method, inner, opts...)
		}
	}
	return next
}
