// Package peer defines the interop suite's peers, the client and server
// implementations under test, and the reference behaviour of greet.GreetService
// that every Go server peer shares.
package peer

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/proto/greet"
)

// Exported group and version: every server peer that supports groups serves
// greet.GreetService twice, without group and version, and under these.
const (
	Group   = "g1"
	Version = "2.0.0"
)

// Server is an implementation serving greet.GreetService.
type Server interface {
	// Name identifies the peer in test names and known_failures.txt.
	Name() string
	// Supports reports whether the server has a feature a case needs
	// (cases.NeedSeen, cases.NeedGroupVersion).
	Supports(need string) bool
	// Start serves on a loopback port and returns its address. stop ends the
	// server and waits for it.
	Start(ctx context.Context) (addr string, stop func(), err error)
}

// Client is an implementation calling greet.GreetService.
type Client interface {
	// Name identifies the peer in test names and known_failures.txt.
	// A client may also have a Supports method, like Server's: cases whose
	// needs it lacks are not run (see the package function Supports).
	Name() string
	// Run makes the calls of cs against addr, one outcome per case, in order.
	// Batching lets peers that start a process (a JVM) do so once.
	Run(ctx context.Context, addr string, cs []cases.Case) ([]cases.Outcome, error)
}

// Supports reports whether a peer, client or server, has a feature a case
// needs. A peer without a Supports method has them all.
func Supports(p any, need string) bool {
	if s, ok := p.(interface{ Supports(string) bool }); ok {
		return s.Supports(need)
	}
	return true
}

// Limited is implemented by a Client that cannot make some calls at all,
// such as a protocol without streaming. The suite reports those cases as
// skipped, with the reason, instead of running them.
type Limited interface {
	Handles(c cases.Case) (ok bool, why string)
}

// Reply is the reference behaviour of GreetService for one request: it waits
// req.SleepMs (or until ctx ends), fails with req.FailCode if set, and echoes
// the payload. seen is what the server observed about the call.
func Reply(ctx context.Context, req *greet.GreetRequest, servedBy string, seen map[string]string) (*greet.GreetResponse, codes.Code, string) {
	if req.GetSleepMs() > 0 {
		t := time.NewTimer(time.Duration(req.GetSleepMs()) * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, codes.DeadlineExceeded, "server gave up: " + ctx.Err().Error()
		case <-t.C:
		}
	}
	if c := req.GetFailCode(); c != 0 {
		return nil, codes.Code(uint32(c)), "failed on request (fail_code)"
	}
	return &greet.GreetResponse{
		Greeting: "Hello, " + req.GetName(),
		Payload:  req.GetPayload(),
		ServedBy: servedBy,
		Seen:     seen,
	}, codes.OK, ""
}

// JoinNames greets every request of a client stream at once.
func JoinNames(reqs []*greet.GreetRequest) string {
	names := make([]string, len(reqs))
	for i, r := range reqs {
		names[i] = r.GetName()
	}
	return "Hello, " + strings.Join(names, ", ")
}

// NewRequest builds the GreetRequest a case describes.
func NewRequest(r cases.Request) *greet.GreetRequest {
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
func NewResponse(r *greet.GreetResponse) cases.Response {
	return cases.Response{Greeting: r.GetGreeting(), PayloadBytes: len(r.GetPayload()), ServedBy: r.GetServedBy(), Seen: r.GetSeen()}
}

// CallTimeout is the deadline of a case's call: its own, or a generous bound
// so that a hung peer fails the case instead of the suite.
func CallTimeout(c cases.Case) time.Duration {
	if c.TimeoutMS > 0 {
		return time.Duration(c.TimeoutMS) * time.Millisecond
	}
	return 20 * time.Second
}
