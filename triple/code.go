package triple

import (
	"fmt"
	"strconv"
	"strings"
)

// Code is an RPC status code, numbered as gRPC numbers them on the wire
// (grpc-status), which Triple shares.
type Code uint32

// The status codes.
const (
	CodeOK                 Code = 0
	CodeCanceled           Code = 1
	CodeUnknown            Code = 2
	CodeInvalidArgument    Code = 3
	CodeDeadlineExceeded   Code = 4
	CodeNotFound           Code = 5
	CodeAlreadyExists      Code = 6
	CodePermissionDenied   Code = 7
	CodeResourceExhausted  Code = 8
	CodeFailedPrecondition Code = 9
	CodeAborted            Code = 10
	CodeOutOfRange         Code = 11
	CodeUnimplemented      Code = 12
	CodeInternal           Code = 13
	CodeUnavailable        Code = 14
	CodeDataLoss           Code = 15
	CodeUnauthenticated    Code = 16

	maxCode = CodeUnauthenticated
)

var codeNames = [...]string{
	"ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found",
	"already_exists", "permission_denied", "resource_exhausted", "failed_precondition",
	"aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss",
	"unauthenticated",
}

// String returns the code's snake-case name, e.g. "deadline_exceeded".
func (c Code) String() string {
	if c <= maxCode {
		return codeNames[c]
	}
	return "code_" + strconv.FormatUint(uint64(c), 10)
}

// ParseCode parses a code name in any case, with dashes or underscores
// ("DEADLINE_EXCEEDED", "deadline-exceeded", "cancelled"), or a number.
func ParseCode(s string) (Code, error) {
	t := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_")
	if t == "cancelled" {
		return CodeCanceled, nil
	}
	for i, n := range codeNames {
		if n == t {
			return Code(i), nil
		}
	}
	if n, err := strconv.ParseUint(t, 10, 32); err == nil && n <= uint64(maxCode) {
		return Code(n), nil
	}
	return 0, fmt.Errorf("triple: unknown status code %q", s)
}

// codeFromHTTP maps an HTTP status of a response that carries no grpc-status
// to a code, as gRPC and Dubbo do.
func codeFromHTTP(status int) Code {
	switch status {
	case 400, 431:
		return CodeInternal
	case 401:
		return CodeUnauthenticated
	case 403:
		return CodePermissionDenied
	case 404:
		return CodeUnimplemented
	case 429, 502, 503, 504:
		return CodeUnavailable
	}
	return CodeUnknown
}

// httpStatus is the HTTP status of an HTTP/1 JSON error response.
func (c Code) httpStatus() int {
	switch c {
	case CodeOK:
		return 200
	case CodeCanceled:
		return 499
	case CodeInvalidArgument, CodeFailedPrecondition, CodeOutOfRange:
		return 400
	case CodeDeadlineExceeded:
		return 504
	case CodeNotFound, CodeUnimplemented:
		return 404
	case CodeAlreadyExists, CodeAborted:
		return 409
	case CodePermissionDenied:
		return 403
	case CodeResourceExhausted:
		return 429
	case CodeUnavailable:
		return 503
	case CodeUnauthenticated:
		return 401
	}
	return 500
}
