package triple

import (
	"errors"
	"io"
)

// Typed stream interfaces used by generated code. Req and Res are message
// types (the struct, not the pointer).

// ServerStreamClient receives the responses of a server-streaming call.
type ServerStreamClient[Res any] interface {
	// Recv returns the next response, or io.EOF after the last one.
	Recv() (*Res, error)
	ClientStream
}

// ClientStreamClient sends the requests of a client-streaming call.
type ClientStreamClient[Req, Res any] interface {
	Send(*Req) error
	// CloseAndRecv ends the requests and waits for the one response.
	CloseAndRecv() (*Res, error)
	ClientStream
}

// BidiStreamClient is a bidirectional stream on the client.
type BidiStreamClient[Req, Res any] interface {
	Send(*Req) error
	Recv() (*Res, error)
	ClientStream
}

// ServerStreamServer sends the responses of a server-streaming call.
type ServerStreamServer[Res any] interface {
	Send(*Res) error
	ServerStream
}

// ClientStreamServer receives the requests of a client-streaming call.
type ClientStreamServer[Req, Res any] interface {
	// Recv returns the next request, or io.EOF after the last one.
	Recv() (*Req, error)
	SendAndClose(*Res) error
	ServerStream
}

// BidiStreamServer is a bidirectional stream on the server.
type BidiStreamServer[Req, Res any] interface {
	Recv() (*Req, error)
	Send(*Res) error
	ServerStream
}

// GenericClientStream adapts a ClientStream to the typed interfaces.
type GenericClientStream[Req, Res any] struct{ ClientStream }

// Send sends one request.
func (x *GenericClientStream[Req, Res]) Send(m *Req) error { return x.SendMsg(m) }

// Recv receives one response.
func (x *GenericClientStream[Req, Res]) Recv() (*Res, error) {
	m := new(Res)
	if err := x.RecvMsg(m); err != nil {
		return nil, err
	}
	return m, nil
}

// CloseAndRecv ends the requests and receives the single response.
func (x *GenericClientStream[Req, Res]) CloseAndRecv() (*Res, error) {
	if err := x.CloseSend(); err != nil {
		return nil, err
	}
	m := new(Res)
	if err := x.RecvMsg(m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errorf(CodeInternal, "client-streaming call ended without a response")
		}
		return nil, err
	}
	if err := x.RecvMsg(new(Res)); !errors.Is(err, io.EOF) {
		if err == nil {
			return nil, Errorf(CodeInternal, "client-streaming call answered with more than one response")
		}
		return nil, err
	}
	return m, nil
}

// GenericServerStream adapts a ServerStream to the typed interfaces.
type GenericServerStream[Req, Res any] struct{ ServerStream }

// Send sends one response.
func (x *GenericServerStream[Req, Res]) Send(m *Res) error { return x.SendMsg(m) }

// SendAndClose sends the single response of a client-streaming call.
func (x *GenericServerStream[Req, Res]) SendAndClose(m *Res) error { return x.SendMsg(m) }

// Recv receives one request.
func (x *GenericServerStream[Req, Res]) Recv() (*Req, error) {
	m := new(Req)
	if err := x.RecvMsg(m); err != nil {
		return nil, err
	}
	return m, nil
}
