package mesh

import (
	"strings"
	"time"

	"github.com/shoalmesh/shoal/sdk/call"
)

// Route sends the calls it matches to weighted destinations under a policy
// (one Istio HTTPRoute). Routes are evaluated in order; the first match wins.
type Route struct {
	// Name is optional and appears in logs and metrics.
	Name string
	// Matches are ORed; an empty list matches every call.
	Matches []RouteMatch
	// Destinations share the matched calls by weight. At least one is needed.
	Destinations []WeightedDestination
	// Policy applies to every call the route matches.
	Policy RoutePolicy
}

// Applies reports whether the route applies to a call with this path and
// these attachments, made by a workload with the given labels.
func (r *Route) Applies(path string, a call.Attachments, source map[string]string) bool {
	if len(r.Matches) == 0 {
		return true
	}
	for i := range r.Matches {
		if r.Matches[i].Matches(path, a, source) {
			return true
		}
	}
	return false
}

// TotalWeight is the sum of the destinations' weights.
func (r *Route) TotalWeight() uint64 {
	var t uint64
	for _, d := range r.Destinations {
		t += uint64(d.Weight)
	}
	return t
}

// Destination names a cluster: a service, optionally narrowed to a subset.
type Destination struct {
	// Service is the interface name or mesh host, e.g. "greet.GreetService".
	Service string
	// Subset is a subset name of Service, or empty for all its endpoints.
	Subset string
}

// String returns "service" or "service|subset".
func (d Destination) String() string {
	if d.Subset == "" {
		return d.Service
	}
	return d.Service + "|" + d.Subset
}

// WeightedDestination is a destination with its share of a route's calls.
type WeightedDestination struct {
	Destination
	// Weight is relative to the route's other destinations (Istio uses
	// percentages that sum to 100). A single destination may leave it 0.
	Weight uint32
	// RequestHeaders are edits applied to calls sent to this destination.
	RequestHeaders HeaderOps
}

// RoutePolicy is what happens to a matched call on its way out.
type RoutePolicy struct {
	// Timeout bounds the whole call, retries included; 0 means no limit
	// beyond the caller's deadline.
	Timeout time.Duration
	// Retry is nil for no retries.
	Retry *RetryPolicy
	// Fault injects delays and aborts for testing resilience; nil for none.
	Fault *FaultPolicy
	// Mirrors receive a fire-and-forget copy of a share of the calls.
	Mirrors []Mirror
	// RequestHeaders are edits applied to every matched call.
	RequestHeaders HeaderOps
}

// RetryPolicy says when and how often a failed call is tried again.
type RetryPolicy struct {
	// Attempts is the number of retries after the first try (Istio's
	// attempts), so a call is tried at most Attempts+1 times.
	Attempts uint32
	// PerTryTimeout bounds each try; 0 means only the route timeout applies.
	PerTryTimeout time.Duration
	// On lists the failures that are retried.
	On RetryOn
	// Backoff spaces the retries.
	Backoff Backoff
	// RetryRemoteLocalities lets retries go to endpoints in other localities.
	RetryRemoteLocalities bool
}

// FaultPolicy injects faults into a share of the calls (Istio
// HTTPFaultInjection). Delay and Abort are independent; nil disables one.
type FaultPolicy struct {
	Delay *FaultDelay
	Abort *FaultAbort
}

// FaultDelay holds back a share of the calls before sending them.
type FaultDelay struct {
	// Fixed is how long each affected call waits.
	Fixed time.Duration
	// Percentage of calls affected, 0 to 100.
	Percentage float64
}

// FaultAbort fails a share of the calls without sending them.
type FaultAbort struct {
	// Code is the status the aborted calls fail with.
	Code call.Code
	// HTTPStatus is the HTTP status Istio configured, kept for HTTP/1 calls
	// and for logs; 0 if the rule named a gRPC status.
	HTTPStatus int
	// Percentage of calls affected, 0 to 100.
	Percentage float64
}

// Mirror sends a copy of a share of the calls to another destination and
// ignores its answers.
type Mirror struct {
	Destination
	// Percentage of calls mirrored, 0 to 100.
	Percentage float64
}

// HeaderOps edits request headers (attachments): Set replaces, Add appends
// (Triple keeps one value per attachment, so Add behaves as Set when the
// header is absent and leaves it alone otherwise), Remove deletes.
type HeaderOps struct {
	Set    map[string]string
	Add    map[string]string
	Remove []string
}

// IsZero reports whether the edits do nothing.
func (h *HeaderOps) IsZero() bool { return len(h.Set) == 0 && len(h.Add) == 0 && len(h.Remove) == 0 }

// Apply performs the edits on a and returns the result, which is a itself
// when a was non-nil. Names are lower-cased.
func (h *HeaderOps) Apply(a call.Attachments) call.Attachments {
	for _, k := range h.Remove {
		if a != nil {
			delete(a, strings.ToLower(k))
		}
	}
	for k, v := range h.Set {
		a = a.Set(k, v)
	}
	for k, v := range h.Add {
		if _, ok := a.Get(k); !ok {
			a = a.Set(k, v)
		}
	}
	return a
}
