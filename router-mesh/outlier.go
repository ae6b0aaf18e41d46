package routermesh

import (
	"sync"
	"time"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Envoy's defaults for fields an OutlierDetection leaves at zero.
const (
	defaultBaseEjectionTime   = 30 * time.Second
	defaultMaxEjectionTime    = 300 * time.Second
	defaultMaxEjectionPercent = 10
)

// errorClass says how a call outcome counts for outlier detection. Envoy maps
// a gRPC status to an HTTP status (Unavailable 503, DeadlineExceeded 504,
// Internal/Unknown/DataLoss 500, Unimplemented 501) and counts 5xx and
// gateway errors (502-504); connection failures are local-origin errors.
type errorClass uint8

const (
	classSuccess errorClass = iota
	classOther              // a failure that is not a server error (4xx-like)
	class5xx
	classGateway // 502, 503, 504: also 5xx
	classLocal   // the call never reached the endpoint
)

func classify(err error) errorClass {
	if err == nil {
		return classSuccess
	}
	if call.IsConnectFailure(err) {
		return classLocal
	}
	switch call.CodeOf(err) {
	case call.Unavailable, call.DeadlineExceeded:
		return classGateway
	case call.Unknown, call.Internal, call.DataLoss, call.Unimplemented:
		return class5xx
	}
	return classOther
}

type hostState struct {
	consec5xx     uint32
	consecGateway uint32
	consecLocal   uint32
	ejections     uint32
	ejectedUntil  time.Time
}

// outlierDetector tracks the endpoints of one cluster. It is shared across
// snapshot updates for the same destination, so counters survive pushes.
type outlierDetector struct {
	mu     sync.Mutex
	policy mesh.OutlierDetection
	hosts  map[string]*hostState
	// ejected counts hosts with ejectedUntil in the future (as of the last
	// sweep); nextExpiry is the earliest of their deadlines.
	ejected    int
	nextExpiry time.Time
}

func newOutlierDetector(p mesh.OutlierDetection) *outlierDetector {
	if p.BaseEjectionTime <= 0 {
		p.BaseEjectionTime = defaultBaseEjectionTime
	}
	if p.MaxEjectionPercent == 0 {
		p.MaxEjectionPercent = defaultMaxEjectionPercent
	}
	return &outlierDetector{policy: p, hosts: map[string]*hostState{}}
}

// setPolicy adopts a new policy from a snapshot update, keeping counters.
func (d *outlierDetector) setPolicy(p mesh.OutlierDetection) {
	n := newOutlierDetector(p)
	d.mu.Lock()
	d.policy = n.policy
	d.mu.Unlock()
}

// report records the outcome of a call to addr among total endpoints and
// reports whether the set of ejected endpoints changed.
func (d *outlierDetector) report(addr string, err error, total int, now time.Time) bool {
	class := classify(err)
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[addr]
	if h == nil {
		if class == classSuccess {
			return false
		}
		h = &hostState{}
		d.hosts[addr] = h
	}
	p := &d.policy
	switch class {
	case classSuccess:
		h.consec5xx, h.consecGateway, h.consecLocal = 0, 0, 0
		// Healthy again for a whole base ejection time: decay the multiplier.
		if h.ejections > 0 && !h.ejectedUntil.IsZero() && now.Sub(h.ejectedUntil) > p.BaseEjectionTime {
			h.ejections--
			h.ejectedUntil = time.Time{}
		}
		return false
	case classOther:
		// An answer, just not a 5xx: the external runs end, and so does a
		// local-origin run, since the call reached the endpoint.
		h.consec5xx, h.consecGateway, h.consecLocal = 0, 0, 0
		return false
	case classLocal:
		h.consecLocal++
		if !p.SplitExternalLocalOriginErrors {
			h.consec5xx++
			h.consecGateway++
		}
	case classGateway:
		h.consec5xx++
		h.consecGateway++
		h.consecLocal = 0
	case class5xx:
		h.consec5xx++
		h.consecGateway = 0
		h.consecLocal = 0
	}
	if now.Before(h.ejectedUntil) {
		return false // already ejected
	}
	trip := (p.Consecutive5xxErrors > 0 && h.consec5xx >= p.Consecutive5xxErrors) ||
		(p.ConsecutiveGatewayErrors > 0 && h.consecGateway >= p.ConsecutiveGatewayErrors) ||
		(p.SplitExternalLocalOriginErrors && p.ConsecutiveLocalOriginFailures > 0 && h.consecLocal >= p.ConsecutiveLocalOriginFailures)
	if !trip {
		return false
	}
	d.sweepLocked(now)
	// Envoy ejects at least one host whatever max_ejection_percent says.
	if d.ejected > 0 && (d.ejected+1)*100 > int(p.MaxEjectionPercent)*total {
		return false
	}
	h.ejections++
	h.consec5xx, h.consecGateway, h.consecLocal = 0, 0, 0
	dur := p.BaseEjectionTime * time.Duration(h.ejections)
	dur = min(dur, max(defaultMaxEjectionTime, p.BaseEjectionTime))
	h.ejectedUntil = now.Add(dur)
	d.ejected++
	if d.nextExpiry.IsZero() || h.ejectedUntil.Before(d.nextExpiry) {
		d.nextExpiry = h.ejectedUntil
	}
	return true
}

// expired reports whether an ejection has ended since the last sweep; it is
// cheap enough for every call.
func (d *outlierDetector) expired(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ejected == 0 || now.Before(d.nextExpiry) {
		return false
	}
	d.sweepLocked(now)
	return true
}

func (d *outlierDetector) sweepLocked(now time.Time) {
	d.ejected, d.nextExpiry = 0, time.Time{}
	for _, h := range d.hosts {
		if now.Before(h.ejectedUntil) {
			d.ejected++
			if d.nextExpiry.IsZero() || h.ejectedUntil.Before(d.nextExpiry) {
				d.nextExpiry = h.ejectedUntil
			}
		}
	}
}

// filter returns the endpoints of ready that are not ejected. When fewer than
// MinHealthPercent of them would remain, or none would, detection steps
// aside and all of ready is used (Envoy's panic threshold).
func (d *outlierDetector) filter(ready []*mesh.Endpoint, now time.Time) []*mesh.Endpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ejected == 0 {
		return ready
	}
	out := make([]*mesh.Endpoint, 0, len(ready))
	for _, e := range ready {
		if h := d.hosts[e.Address]; h == nil || !now.Before(h.ejectedUntil) {
			out = append(out, e)
		}
	}
	if len(out) == 0 || len(out)*100 < int(d.policy.MinHealthPercent)*len(ready) {
		return ready
	}
	return out
}

// isEjected reports whether addr is ejected now (for introspection and tests).
func (d *outlierDetector) isEjected(addr string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[addr]
	return h != nil && now.Before(h.ejectedUntil)
}
