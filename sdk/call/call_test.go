package call_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/shoalmesh/shoal/sdk/call"
)

func TestParseCode(t *testing.T) {
	tests := map[string]call.Code{
		"unavailable": call.Unavailable, "UNAVAILABLE": call.Unavailable, "deadline_exceeded": call.DeadlineExceeded,
		"cancelled": call.Canceled, "canceled": call.Canceled, "14": call.Unavailable, " ok ": call.OK,
	}
	for in, want := range tests {
		if got, err := call.ParseCode(in); err != nil || got != want {
			t.Errorf("ParseCode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "17", "nope"} {
		if _, err := call.ParseCode(in); err == nil {
			t.Errorf("ParseCode(%q) succeeded", in)
		}
	}
	for c := call.OK; c <= call.Unauthenticated; c++ {
		if got, err := call.ParseCode(c.String()); err != nil || got != c {
			t.Errorf("round trip of %d: %v, %v", c, got, err)
		}
	}
}

type foreign struct{}

func (foreign) Error() string         { return "foreign" }
func (foreign) StatusCode() call.Code { return call.PermissionDenied }

// otherCode stands for a transport's own code type (triple.Code).
type otherCode uint32

type transportError struct{ c otherCode }

func (e *transportError) Error() string         { return "transport" }
func (e *transportError) StatusCode() otherCode { return e.c }

type oddStatus struct{}

func (oddStatus) Error() string      { return "odd" }
func (oddStatus) StatusCode() string { return "14" }

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want call.Code
	}{
		{nil, call.OK},
		{call.Errorf(call.NotFound, "x"), call.NotFound},
		{fmt.Errorf("wrapped: %w", call.Errorf(call.Unavailable, "x")), call.Unavailable},
		{fmt.Errorf("wrapped: %w", foreign{}), call.PermissionDenied},
		{context.DeadlineExceeded, call.DeadlineExceeded},
		{fmt.Errorf("x: %w", context.Canceled), call.Canceled},
		{errors.New("plain"), call.Unknown},
		{fmt.Errorf("x: %w", &transportError{c: 14}), call.Unavailable},
		{oddStatus{}, call.Unknown},
	}
	for _, tt := range tests {
		if got := call.CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	e := &call.Error{Code: call.Unavailable, Message: "dial", Connect: true, Err: errors.New("refused")}
	if !call.IsConnectFailure(fmt.Errorf("x: %w", e)) || call.IsConnectFailure(call.Errorf(call.Unavailable, "")) {
		t.Error("IsConnectFailure wrong")
	}
	if got, want := e.Error(), "unavailable: dial: refused"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestAttachments(t *testing.T) {
	var a call.Attachments
	if _, ok := a.Get("x"); ok {
		t.Error("nil attachments returned a value")
	}
	a = a.Set("X-User", "alice")
	if v, ok := a.Get("x-USER"); !ok || v != "alice" {
		t.Errorf("Get = %q, %v", v, ok)
	}
	c := a.Clone()
	c["x-user"] = "bob"
	if a["x-user"] != "alice" {
		t.Error("Clone shares storage")
	}
	if allocs := testing.AllocsPerRun(100, func() { a.Get("x-user") }); allocs != 0 {
		t.Errorf("Get with a lower-case key allocates %v times", allocs)
	}
	i := call.Info{Service: "greet.GreetService", Method: "Greet"}
	if i.Path() != "/greet.GreetService/Greet" {
		t.Errorf("Path = %q", i.Path())
	}
}

func TestCodeForHTTPStatus(t *testing.T) {
	for status, want := range map[int]call.Code{
		400: call.Internal, 401: call.Unauthenticated, 403: call.PermissionDenied,
		404: call.Unimplemented, 429: call.Unavailable, 502: call.Unavailable,
		503: call.Unavailable, 504: call.Unavailable, 500: call.Unknown, 200: call.Unknown,
	} {
		if got := call.CodeForHTTPStatus(status); got != want {
			t.Errorf("CodeForHTTPStatus(%d) = %v, want %v", status, got, want)
		}
	}
}
