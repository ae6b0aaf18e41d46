package call

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Code is an RPC status code. The numbering is gRPC's, which Triple, Dubbo
// Java and grpc-go all share on the wire (grpc-status trailer).
type Code uint32

// The status codes, numbered as on the wire.
const (
	OK                 Code = 0
	Canceled           Code = 1
	Unknown            Code = 2
	InvalidArgument    Code = 3
	DeadlineExceeded   Code = 4
	NotFound           Code = 5
	AlreadyExists      Code = 6
	PermissionDenied   Code = 7
	ResourceExhausted  Code = 8
	FailedPrecondition Code = 9
	Aborted            Code = 10
	OutOfRange         Code = 11
	Unimplemented      Code = 12
	Internal           Code = 13
	Unavailable        Code = 14
	DataLoss           Code = 15
	Unauthenticated    Code = 16

	maxCode = Unauthenticated
)

// codeNames are the lower-case, dash-separated names Envoy and Istio use in
// retryOn ("deadline-exceeded", "resource-exhausted", ...).
var codeNames = [...]string{
	OK:                 "ok",
	Canceled:           "cancelled",
	Unknown:            "unknown",
	InvalidArgument:    "invalid-argument",
	DeadlineExceeded:   "deadline-exceeded",
	NotFound:           "not-found",
	AlreadyExists:      "already-exists",
	PermissionDenied:   "permission-denied",
	ResourceExhausted:  "resource-exhausted",
	FailedPrecondition: "failed-precondition",
	Aborted:            "aborted",
	OutOfRange:         "out-of-range",
	Unimplemented:      "unimplemented",
	Internal:           "internal",
	Unavailable:        "unavailable",
	DataLoss:           "data-loss",
	Unauthenticated:    "unauthenticated",
}

// String returns the code's dash-separated name, e.g. "deadline-exceeded".
func (c Code) String() string {
	if c <= maxCode {
		return codeNames[c]
	}
	return "code(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// ParseCode accepts a code name as written in configuration, in any case and
// with dashes or underscores ("unavailable", "DEADLINE_EXCEEDED",
// "resource-exhausted"), or its number ("14").
func ParseCode(s string) (Code, error) {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"))
	if t == "canceled" {
		return Canceled, nil
	}
	for i, n := range codeNames {
		if n == t {
			return Code(i), nil
		}
	}
	if n, err := strconv.ParseUint(t, 10, 32); err == nil && n <= uint64(maxCode) {
		return Code(n), nil
	}
	return 0, fmt.Errorf("unknown status code %q; use a gRPC code name such as unavailable or deadline-exceeded, or its number 0-16", s)
}

// CodeForHTTPStatus maps an HTTP status to the gRPC code that gRPC's
// http-grpc-status-mapping.md assigns it: 400 -> Internal, 401 ->
// Unauthenticated, 403 -> PermissionDenied, 404 -> Unimplemented,
// 429/502/503/504 -> Unavailable, anything else -> Unknown. Fault aborts that
// name an HTTP status (Istio's fault.abort.httpStatus) use it.
func CodeForHTTPStatus(status int) Code {
	switch status {
	case 400:
		return Internal
	case 401:
		return Unauthenticated
	case 403:
		return PermissionDenied
	case 404:
		return Unimplemented
	case 429, 502, 503, 504:
		return Unavailable
	}
	return Unknown
}

// Error is an RPC failure with a status code. Transports adapt their own
// error types to it (or implement Coder) so that cluster strategies can tell
// retryable failures apart.
type Error struct {
	Code Code
	// Message is the human-readable text (grpc-message).
	Message string
	// Connect reports that the call never reached a provider: dialing
	// failed, or the connection was refused. Such calls are always safe to
	// retry on another endpoint.
	Connect bool
	// Err is the underlying cause, if any.
	Err error
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code.String())
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Coder is implemented by errors that carry a status code, so that error
// types from other packages (a transport's) are understood by CodeOf
// without being converted. CodeOf also accepts a StatusCode method that
// returns another unsigned 32-bit code type, such as triple.Code, which
// cannot name this package's type.
type Coder interface {
	StatusCode() Code
}

// foreignCode reads a StatusCode() method returning any uint32-kind type.
func foreignCode(err error) (Code, bool) {
	m := reflect.ValueOf(err).MethodByName("StatusCode")
	if !m.IsValid() {
		return 0, false
	}
	t := m.Type()
	if t.NumIn() != 0 || t.NumOut() != 1 || t.Out(0).Kind() != reflect.Uint32 {
		return 0, false
	}
	return Code(m.Call(nil)[0].Uint()), true
}

// CodeOf returns the status code carried by err: OK for nil; otherwise the
// code of the outermost *Error or Coder in its chain (so a wrapper that
// states its own code wins over the errors it wraps), DeadlineExceeded or
// Canceled for context errors, and Unknown for anything else.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	if c, ok := findCode(err); ok {
		return c
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	return Unknown
}

func findCode(err error) (Code, bool) {
	for depth := 0; err != nil && depth < 100; depth++ {
		switch e := err.(type) { //nolint:errorlint // walks the chain itself, outermost first
		case *Error:
			return e.Code, true
		case Coder:
			return e.StatusCode(), true
		}
		if c, ok := foreignCode(err); ok {
			return c, true
		}
		switch u := err.(type) { //nolint:errorlint // the unwrap step of that walk
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if c, ok := findCode(inner); ok {
					return c, true
				}
			}
			return 0, false
		default:
			return 0, false
		}
	}
	return 0, false
}

// IsConnectFailure reports whether err says the call never reached a
// provider (an *Error with Connect set anywhere in its chain).
func IsConnectFailure(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Connect
}
