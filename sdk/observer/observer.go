package observer

// Observer receives the mesh client's events. Methods are called on the
// call path (Retry, Overflow, Fault) or on a discovery update (Endpoints),
// concurrently: they must be safe for concurrent use, quick, and must not
// block or call back into the consumer.
//
// Embed Nop in an implementation so that methods added later have a
// default.
type Observer interface {
	// Endpoints reports, after each discovery update, how many distinct
	// endpoints a reference's clusters hold (total) and how many of them
	// are ready. reference is the referenced interface name.
	Endpoints(reference string, ready, total int)
	// Ejected reports that outlier detection ejected endpoint (its
	// address) from destination ("service" or "service|subset").
	Ejected(destination, endpoint string)
	// Overflow reports that destination's circuit breaker refused a call
	// (MaxRequests) or a retry (MaxRetries).
	Overflow(destination string, limit Limit)
	// Retry reports that a call to destination is retried: once per
	// retry, not counting the first try.
	Retry(destination string)
	// Fault reports that a route's fault injection delayed or aborted a
	// call to service.
	Fault(service string, fault Fault)
}

// Limit names the circuit-breaker limit that refused a call.
type Limit uint8

// Circuit-breaker limits, as a DestinationRule's connectionPool.http names them.
const (
	// MaxRequests is http2MaxRequests: calls in flight.
	MaxRequests Limit = iota
	// MaxRetries is maxRetries: retries in flight.
	MaxRetries
)

func (l Limit) String() string {
	if l == MaxRetries {
		return "max_retries"
	}
	return "max_requests"
}

// Fault is the kind of an injected fault.
type Fault uint8

// Fault kinds, as a VirtualService's fault names them.
const (
	Delay Fault = iota
	Abort
)

func (f Fault) String() string {
	if f == Abort {
		return "abort"
	}
	return "delay"
}

// Nop is an Observer that ignores every event; embed it to implement only
// some methods.
type Nop struct{}

// Endpoints implements Observer.
func (Nop) Endpoints(string, int, int) {}

// Ejected implements Observer.
func (Nop) Ejected(string, string) {}

// Overflow implements Observer.
func (Nop) Overflow(string, Limit) {}

// Retry implements Observer.
func (Nop) Retry(string) {}

// Fault implements Observer.
func (Nop) Fault(string, Fault) {}

// OrNop returns o, or Nop when o is nil, so that callers never check.
func OrNop(o Observer) Observer {
	if o == nil {
		return Nop{}
	}
	return o
}
