package call

import (
	"strings"
	"time"
)

// Info describes one call. A consumer builds it once per call and passes it
// by pointer down the filter chain, the router, the balancer and the cluster
// strategy; those must treat it as read-only unless they own the call.
type Info struct {
	// Service is the interface name, e.g. "greet.GreetService".
	Service string
	// Group and Version select one provider flavour of Service; both may be
	// empty. They travel as the tri-service-group and tri-service-version
	// headers.
	Group   string
	Version string
	// Method is the method name exactly as in the IDL, e.g. "Greet".
	Method string
	// Attachments are the call's request metadata (Dubbo attachments,
	// HTTP/2 headers). Keys are lower-case.
	Attachments Attachments
	// Streaming reports whether the call is a stream rather than unary.
	Streaming bool
	// FullMethod, when set, is the call's HTTP/2 path "/Service/Method" as
	// the caller already has it (generated clients do), which saves Path
	// building it on every call.
	FullMethod string
	// Deadline, when set, is when the call must end: the consumer's
	// per-call timeout, set once the call is routed, for strategies
	// (retry only before it) and connections (end the call by it, with
	// DEADLINE_EXCEEDED, and send it to the provider). The consumer sets it
	// instead of deriving a context, which would cost four allocations per
	// call; a context deadline that comes earlier still applies, and then
	// Deadline stays zero.
	Deadline time.Time
}

// Expired reports whether the call's Deadline has passed.
func (i *Info) Expired() bool {
	return !i.Deadline.IsZero() && !time.Now().Before(i.Deadline)
}

// DeadlineError is the error of a call whose Deadline passed.
func DeadlineError(i *Info) *Error {
	return Errorf(DeadlineExceeded, "%s: timeout exceeded", i.Path())
}

// Path returns the HTTP/2 path of the call, "/Service/Method".
func (i *Info) Path() string {
	if i.FullMethod != "" {
		return i.FullMethod
	}
	return "/" + i.Service + "/" + i.Method
}

// Attachments is request metadata keyed by lower-case name. A nil
// Attachments is empty and safe to read.
type Attachments map[string]string

// Get returns the value for key, matching the name case-insensitively as
// HTTP/2 headers are matched. It does not allocate when key is already
// lower-case.
func (a Attachments) Get(key string) (string, bool) {
	if a == nil {
		return "", false
	}
	if hasUpper(key) {
		key = strings.ToLower(key)
	}
	v, ok := a[key]
	return v, ok
}

// Set stores value under the lower-cased key, allocating the map if needed,
// and returns the (possibly new) map.
func (a Attachments) Set(key, value string) Attachments {
	if a == nil {
		a = make(Attachments, 4)
	}
	a[strings.ToLower(key)] = value
	return a
}

// Clone returns a copy that shares nothing with a.
func (a Attachments) Clone() Attachments {
	if a == nil {
		return nil
	}
	c := make(Attachments, len(a))
	for k, v := range a {
		c[k] = v
	}
	return c
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}
