// Package driver is this module's side of the interop suite's subprocess
// protocol (interop/peer/proc), the one the Java peer speaks too:
//
//   - a client reads cases as JSON lines on standard input and writes one
//     outcome per case as a JSON line on standard output;
//   - a server prints "READY <addr>" once it serves and exits when its
//     standard input closes.
//
// It also holds the reference behaviour of greet.GreetService (interop/peer's
// Reply). This module cannot import the interop module (see go.mod), so both
// are restated here; interop's tests keep the two in step.
package driver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/interop/dubbogo/greet"
)

// Exported group and version, as in interop/peer.
const (
	Group   = "g1"
	Version = "2.0.0"
)

// Case is one call to make.
type Case struct {
	Name        string            `json:"name"`
	Method      string            `json:"method"`
	Requests    []Request         `json:"requests"`
	Group       string            `json:"group,omitempty"`
	Version     string            `json:"version,omitempty"`
	Attachments map[string]string `json:"attachments,omitempty"`
	TimeoutMS   int               `json:"timeout_ms,omitempty"`
}

// Request is one GreetRequest of a case.
type Request struct {
	Name         string `json:"name"`
	PayloadBytes int    `json:"payload_bytes"`
	Count        int32  `json:"count"`
	SleepMS      int32  `json:"sleep_ms"`
	FailCode     int32  `json:"fail_code"`
}

// Outcome is what a client observed.
type Outcome struct {
	Code      int        `json:"code"`
	Message   string     `json:"message"`
	Responses []Response `json:"responses"`
}

// Response is one GreetResponse received.
type Response struct {
	Greeting     string            `json:"greeting"`
	PayloadBytes int               `json:"payload_bytes"`
	ServedBy     string            `json:"served_by"`
	Seen         map[string]string `json:"seen"`
}

// Timeout is the case's deadline, or a generous bound.
func (c Case) Timeout() time.Duration {
	if c.TimeoutMS > 0 {
		return time.Duration(c.TimeoutMS) * time.Millisecond
	}
	return 20 * time.Second
}

// RunClient reads cases from in, runs each with call and writes the outcomes
// to out, in order.
func RunClient(in io.Reader, out io.Writer, call func(Case) Outcome) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var c Case
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return fmt.Errorf("case %q: %w", line, err)
		}
		if err := enc.Encode(call(c)); err != nil {
			return err
		}
	}
	return sc.Err()
}

// NewRequest builds the GreetRequest r describes.
func NewRequest(r Request) *greet.GreetRequest {
	var payload []byte
	if r.PayloadBytes > 0 {
		payload = make([]byte, r.PayloadBytes)
		for i := range payload {
			payload[i] = byte(i)
		}
	}
	return &greet.GreetRequest{Name: r.Name, Payload: payload, Count: r.Count, SleepMs: r.SleepMS, FailCode: r.FailCode}
}

// NewResponse records a received GreetResponse.
func NewResponse(r *greet.GreetResponse) Response {
	return Response{Greeting: r.GetGreeting(), PayloadBytes: len(r.GetPayload()), ServedBy: r.GetServedBy(), Seen: r.GetSeen()}
}

// Reply is the reference behaviour for one request: wait SleepMs (or until
// ctx ends), fail with FailCode if set, else echo. code is a gRPC code.
func Reply(ctx context.Context, req *greet.GreetRequest, servedBy string, seen map[string]string) (resp *greet.GreetResponse, code int, msg string) {
	if req.GetSleepMs() > 0 {
		t := time.NewTimer(time.Duration(req.GetSleepMs()) * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, 4, "server gave up: " + ctx.Err().Error()
		case <-t.C:
		}
	}
	if c := req.GetFailCode(); c != 0 {
		return nil, int(c), "failed on request (fail_code)"
	}
	return &greet.GreetResponse{
		Greeting: "Hello, " + req.GetName(),
		Payload:  req.GetPayload(),
		ServedBy: servedBy,
		Seen:     seen,
	}, 0, ""
}

// JoinNames greets every request of a client stream at once.
func JoinNames(reqs []*greet.GreetRequest) string {
	names := make([]string, len(reqs))
	for i, r := range reqs {
		names[i] = r.GetName()
	}
	return "Hello, " + strings.Join(names, ", ")
}
