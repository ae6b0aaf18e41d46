package observertest

import (
	"fmt"
	"sync"

	"github.com/shoalmesh/shoal/sdk/observer"
)

// Recorder is a fake observer.Observer that counts events by kind and
// label. It is safe for concurrent use.
type Recorder struct {
	mu        sync.Mutex
	counts    map[string]int
	endpoints map[string][2]int
}

var _ observer.Observer = (*Recorder)(nil)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{counts: map[string]int{}, endpoints: map[string][2]int{}}
}

func (r *Recorder) add(key string) {
	r.mu.Lock()
	r.counts[key]++
	r.mu.Unlock()
}

// Endpoints implements observer.Observer; see EndpointsOf.
func (r *Recorder) Endpoints(reference string, ready, total int) {
	r.mu.Lock()
	r.endpoints[reference] = [2]int{ready, total}
	r.counts["endpoints "+reference]++
	r.mu.Unlock()
}

// Ejected implements observer.Observer, counted as "ejected <destination> <endpoint>".
func (r *Recorder) Ejected(destination, endpoint string) {
	r.add("ejected " + destination + " " + endpoint)
}

// Overflow implements observer.Observer, counted as "overflow <destination> <limit>".
func (r *Recorder) Overflow(destination string, limit observer.Limit) {
	r.add(fmt.Sprintf("overflow %s %s", destination, limit))
}

// Retry implements observer.Observer, counted as "retry <destination>".
func (r *Recorder) Retry(destination string) { r.add("retry " + destination) }

// Fault implements observer.Observer, counted as "fault <service> <fault>".
func (r *Recorder) Fault(service string, fault observer.Fault) {
	r.add(fmt.Sprintf("fault %s %s", service, fault))
}

// Count returns how many events of key (as the methods name them) were
// recorded.
func (r *Recorder) Count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key]
}

// Counts returns a copy of every count, for a test's failure message.
func (r *Recorder) Counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.counts))
	for k, v := range r.counts {
		out[k] = v
	}
	return out
}

// EndpointsOf returns the last ready and total endpoint counts reported
// for reference, and whether any were.
func (r *Recorder) EndpointsOf(reference string) (ready, total int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.endpoints[reference]
	return e[0], e[1], ok
}
