package xdsclient

import (
	"slices"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
)

// ConnState is the state of the connection to istiod.
type ConnState int

// Connection states.
const (
	// Idle: nothing watched yet, so no connection.
	Idle ConnState = iota
	// Connecting: watching, no stream yet.
	Connecting
	// Ready: an ADS stream is open.
	Ready
	// TransientFailure: the stream broke; the client retries with backoff
	// and serves from its cache.
	TransientFailure
)

// MarshalText renders the state by name in JSON and logs.
func (s ConnState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s ConnState) String() string {
	switch s {
	case Idle:
		return "IDLE"
	case Connecting:
		return "CONNECTING"
	case Ready:
		return "READY"
	case TransientFailure:
		return "TRANSIENT_FAILURE"
	}
	return "UNKNOWN"
}

// ResourceState is where a watched resource stands.
type ResourceState int

// Resource states.
const (
	// StateRequested: subscribed, no answer yet.
	StateRequested ResourceState = iota
	// StateACKed: the last version received was valid and is in use.
	StateACKed
	// StateNACKed: the last version received was invalid; the previous
	// good one (if any) is in use.
	StateNACKed
	// StateNotFound: istiod says the resource does not exist.
	StateNotFound
)

// MarshalText renders the state by name in JSON and logs.
func (s ResourceState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s ResourceState) String() string {
	switch s {
	case StateRequested:
		return "REQUESTED"
	case StateACKed:
		return "ACKED"
	case StateNACKed:
		return "NACKED"
	case StateNotFound:
		return "NOT_FOUND"
	}
	return "UNKNOWN"
}

// Status is a snapshot of what the client holds, for `shoal show`. It
// marshals to readable JSON: states and types by name, resources as their
// validated models.
type Status struct {
	Server string
	NodeID string
	State  ConnState
	// StateSince is when State last changed.
	StateSince time.Time
	// LastConnError says why the last stream failed; empty when Ready.
	LastConnError string
	// Streams counts the ADS streams opened so far.
	Streams int
	// NextRetryAt is when the next stream attempt is due, while not Ready
	// (zero before the first failure).
	NextRetryAt time.Time `json:",omitzero"`
	// RefusedProbes counts the connection probes istiod's address refused
	// since the last stream opened (see WithReconnectProbe).
	RefusedProbes int
	// ServerFailures counts istiod going from healthy to unhealthy: an
	// ADS stream that ended (or never opened) without a response, after
	// the client had last seen istiod respond (gRFC A57, A78's
	// grpc.xds_client.server_failure).
	ServerFailures int
	Types          []TypeStatus
}

// TypeStatus describes one resource type.
type TypeStatus struct {
	Type xdsresource.Type
	// Version is the last version ACKed.
	Version string
	// Nonce is the nonce of the last response on the current stream.
	Nonce string
	// LastError is the last NACK sent, with LastErrorAt and the rejected
	// version; it is kept after later ACKs, for diagnosis.
	LastError       string
	LastErrorAt     time.Time
	LastNACKVersion string
	// Responses counts the responses received for this type, the last at
	// LastResponseAt.
	Responses      int
	LastResponseAt time.Time
	// ValidUpdates and InvalidUpdates count the resources received in
	// those responses that were valid (unchanged ones included) and
	// invalid (gRFC A78's grpc.xds_client.resource_updates_valid and
	// resource_updates_invalid).
	ValidUpdates, InvalidUpdates int
	Resources                    []ResourceStatus
}

// ResourceStatus describes one watched resource.
type ResourceStatus struct {
	Name  string
	State ResourceState
	// Version is the response version the resource in use came with.
	Version string
	// Error is why the last version was rejected (State NACKED).
	Error     string
	UpdatedAt time.Time
	Watchers  int
	// Resource is the validated resource in use (nil if none).
	Resource xdsresource.Resource
}

// Status returns a snapshot of the connection and the cache.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{
		Server:        c.cfg.ServerURI,
		NodeID:        c.cfg.Node.ID,
		State:         c.conn.state,
		StateSince:    c.conn.since,
		LastConnError: c.conn.lastError,
		Streams:       c.conn.streams,
		NextRetryAt:   c.conn.nextRetry,
		RefusedProbes: c.conn.refusedProbes,

		ServerFailures: c.conn.serverFailures,
	}
	for _, ts := range c.types {
		t := TypeStatus{
			Type:            ts.typ,
			Version:         ts.version,
			Nonce:           ts.nonce,
			LastError:       ts.lastError,
			LastErrorAt:     ts.lastErrorAt,
			LastNACKVersion: ts.lastNACKed,
			Responses:       ts.responseCount,
			LastResponseAt:  ts.lastUpdateAt,
			ValidUpdates:    ts.validUpdates,
			InvalidUpdates:  ts.invalidUpdates,
		}
		for _, rs := range ts.resources {
			t.Resources = append(t.Resources, ResourceStatus{
				Name:      rs.name,
				State:     rs.state,
				Version:   rs.version,
				Error:     rs.err,
				UpdatedAt: rs.updated,
				Watchers:  len(rs.watchers),
				Resource:  rs.resource,
			})
		}
		slices.SortFunc(t.Resources, func(a, b ResourceStatus) int { return strings.Compare(a.Name, b.Name) })
		s.Types = append(s.Types, t)
	}
	return s
}
