package triple

import (
	"context"
	"errors"
	"fmt"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Error is an RPC failure: a Code, a message and optional details (sent as
// grpc-status-details-bin, a google.rpc.Status).
type Error struct {
	code    Code
	msg     string
	details []*anypb.Any
	meta    Metadata // response headers and trailers of a failed call
	cause   error
}

// NewError returns an error with code and message.
func NewError(code Code, msg string) *Error { return &Error{code: code, msg: msg} }

// Errorf returns an error with code and a formatted message; %w wraps.
func Errorf(code Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{code: code, msg: err.Error(), cause: errors.Unwrap(err)}
}

// Code returns the status code.
func (e *Error) Code() Code { return e.code }

// Message returns the message without the code.
func (e *Error) Message() string { return e.msg }

// Details returns the error details.
func (e *Error) Details() []*anypb.Any { return e.details }

// AddDetail attaches a protobuf message as an error detail.
func (e *Error) AddDetail(m proto.Message) error {
	a, err := anypb.New(m)
	if err != nil {
		return err
	}
	e.details = append(e.details, a)
	return nil
}

// Meta returns the response headers and trailers that came with the error
// (client side).
func (e *Error) Meta() Metadata { return e.meta }

func (e *Error) Error() string {
	if e.msg == "" {
		return e.code.String()
	}
	return e.code.String() + ": " + e.msg
}

// Unwrap returns the wrapped cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// StatusCode returns the code as a uint32-based value for packages that
// read codes through an interface (the sdk's call.Coder).
func (e *Error) StatusCode() Code { return e.code }

// CodeOf returns the code of err: OK for nil, the code of an *Error in its
// chain, DeadlineExceeded or Canceled for context errors, else Unknown.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.code
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	}
	return CodeUnknown
}

// asError converts any error into an *Error for the wire.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{code: CodeOf(err), msg: err.Error(), cause: err}
}

func (e *Error) statusProto() *spb.Status {
	return &spb.Status{Code: int32(e.code), Message: e.msg, Details: e.details}
}
