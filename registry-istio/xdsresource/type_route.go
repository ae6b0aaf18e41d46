package xdsresource

import (
	"regexp"
	"time"
)

// RouteConfig is a validated RouteConfiguration.
type RouteConfig struct {
	Name         string
	VirtualHosts []VirtualHost
	// RequestHeaders are edits for every request routed by this
	// configuration.
	RequestHeaders HeaderMutations
	// MostSpecificHeaderMutationsWins reverses the order in which the
	// levels' header edits are applied (see HeaderMutations).
	MostSpecificHeaderMutationsWins bool
}

// ResourceName implements Resource.
func (r *RouteConfig) ResourceName() string { return r.Name }

// ResourceType implements Resource.
func (r *RouteConfig) ResourceType() Type { return RouteConfigType }

// VirtualHost groups routes by the authority they serve.
type VirtualHost struct {
	Name    string
	Domains []string
	// Routes are evaluated in order; the first match wins.
	Routes []Route
	// RetryPolicy applies to routes without their own policy.
	RetryPolicy *RetryPolicy
	// RequestHeaders are edits for every request this virtual host routes.
	RequestHeaders HeaderMutations
}

// PathMatchKind says how Route.Match.Path is compared.
type PathMatchKind int

// Path match kinds.
const (
	PathPrefix PathMatchKind = iota
	PathExact
	PathRegex
)

// StringMatchKind says how a header value is compared.
type StringMatchKind int

// String match kinds.
const (
	MatchExact StringMatchKind = iota
	MatchPrefix
	MatchSuffix
	MatchContains
	MatchRegex
	MatchPresent
	MatchRange
)

// RouteMatch selects the requests a route applies to. All parts must match.
type RouteMatch struct {
	PathKind PathMatchKind
	// Path is the prefix, the exact path, or the regular expression source.
	Path string
	// PathRegex is the compiled Path when PathKind is PathRegex.
	PathRegex     *regexp.Regexp
	CaseSensitive bool
	Headers       []HeaderMatch
	// FractionPPM, when non-nil, matches only this share of requests, in parts
	// per million.
	FractionPPM *uint32
	// QueryParameters names the query parameters the route requires. gRPC
	// and Triple paths carry no query string, so such a route never matches
	// a call (it is accepted, as Envoy does, and skipped).
	QueryParameters []string
}

// HeaderMatch compares one request header (or Triple attachment).
type HeaderMatch struct {
	Name  string
	Kind  StringMatchKind
	Value string
	// Regex is the compiled Value when Kind is MatchRegex.
	Regex *regexp.Regexp
	// RangeStart and RangeEnd bound an integer value when Kind is MatchRange
	// (start inclusive, end exclusive).
	RangeStart, RangeEnd int64
	// Present is the wanted presence when Kind is MatchPresent.
	Present    bool
	Invert     bool
	IgnoreCase bool
}

// ActionKind says what a matched route does.
type ActionKind int

// Route actions.
const (
	// ActionRoute forwards to WeightedClusters.
	ActionRoute ActionKind = iota
	// ActionNonForwarding matches but does not forward (server-side routes).
	ActionNonForwarding
	// ActionUnsupported matched a route whose action this client does not
	// implement (for example a redirect); calls that match it fail.
	ActionUnsupported
)

// Route is one validated route.
type Route struct {
	Name   string
	Match  RouteMatch
	Action ActionKind
	// WeightedClusters are the destinations; a single-cluster route has one
	// entry. Weights are positive and TotalWeight is their sum.
	WeightedClusters []WeightedCluster
	TotalWeight      uint64
	// Timeout bounds the whole call, retries included (0: none).
	Timeout time.Duration
	// RetryPolicy, if set, overrides the virtual host's.
	RetryPolicy *RetryPolicy
	// Fault is the fault injection policy for the route (nil: none).
	Fault *FaultPolicy
	// HashPolicies feed consistent hashing (ring hash) balancers.
	HashPolicies []HashPolicy
	// Mirrors copies traffic to other clusters without waiting for them.
	Mirrors []MirrorPolicy
	// RequestHeaders are edits for every request this route matches.
	RequestHeaders HeaderMutations
}

// WeightedCluster is a destination of a route with its share.
type WeightedCluster struct {
	Name   string
	Weight uint32
	// RequestHeaders are edits for the requests sent to this cluster.
	RequestHeaders HeaderMutations
}

// HeaderMutations are one level's request header edits (Envoy's
// request_headers_to_add and request_headers_to_remove of a route
// configuration, virtual host, route or weighted cluster). Within a level
// Envoy removes first, then adds in order. Across levels it applies the
// weighted cluster's, then the route's, the virtual host's and the route
// configuration's, so a less specific level has the last word; with
// RouteConfig.MostSpecificHeaderMutationsWins the order is reversed.
type HeaderMutations struct {
	// Add holds the headers to add or overwrite, in order.
	Add []HeaderValueOption
	// Remove holds the lower-case names of the headers to remove.
	Remove []string
}

// IsZero reports whether the level edits nothing.
func (h *HeaderMutations) IsZero() bool { return len(h.Add) == 0 && len(h.Remove) == 0 }

// HeaderValueOption is one header to add.
type HeaderValueOption struct {
	// Name is lower-case.
	Name  string
	Value string
	// Action says what happens when the header is already there.
	Action HeaderAppendAction
	// KeepEmptyValue adds the header even when Value is empty (Envoy drops
	// it otherwise).
	KeepEmptyValue bool
}

// HeaderAppendAction is Envoy's HeaderValueOption.append_action.
type HeaderAppendAction int

// Header append actions.
const (
	// AppendIfExistsOrAdd adds another value (Istio's headers.request.add).
	AppendIfExistsOrAdd HeaderAppendAction = iota
	// AddIfAbsent adds the header only when it is not there.
	AddIfAbsent
	// OverwriteIfExistsOrAdd replaces any value (Istio's headers.request.set).
	OverwriteIfExistsOrAdd
	// OverwriteIfExists replaces the value only when the header is there.
	OverwriteIfExists
)

func (a HeaderAppendAction) String() string {
	switch a {
	case AppendIfExistsOrAdd:
		return "APPEND_IF_EXISTS_OR_ADD"
	case AddIfAbsent:
		return "ADD_IF_ABSENT"
	case OverwriteIfExistsOrAdd:
		return "OVERWRITE_IF_EXISTS_OR_ADD"
	case OverwriteIfExists:
		return "OVERWRITE_IF_EXISTS"
	}
	return "UNKNOWN"
}

// RetryPolicy describes when and how to retry a call.
type RetryPolicy struct {
	// RetryOn holds the conditions, for example "unavailable",
	// "cancelled", "5xx", "connect-failure".
	RetryOn       []string
	NumRetries    uint32
	PerTryTimeout time.Duration
	BaseInterval  time.Duration
	MaxInterval   time.Duration
}

// FaultPolicy injects delays and aborts into a share of calls.
type FaultPolicy struct {
	// DelayPPM is the share of delayed calls in parts per million.
	DelayPPM uint32
	Delay    time.Duration
	// AbortPPM is the share of aborted calls in parts per million.
	AbortPPM uint32
	// AbortGRPCCode is the gRPC status code of aborted calls, if set.
	AbortGRPCCode *uint32
	// AbortHTTPStatus is the HTTP status of aborted calls, if set.
	AbortHTTPStatus uint32
}

// HashPolicy names what a consistent hash is computed over.
type HashPolicy struct {
	// Header is the request header (or attachment) hashed; empty when
	// ChannelID or SourceIP is set.
	Header string
	// ChannelID hashes per client channel (grpc-go's filter-state key).
	ChannelID bool
	// SourceIP hashes the caller's address (Istio's useSourceIp).
	SourceIP bool
	// Terminal stops evaluating further policies when this one yields a hash.
	Terminal bool
}

// MirrorPolicy copies a share of calls to another cluster.
type MirrorPolicy struct {
	Cluster string
	// PPM is the mirrored share in parts per million.
	PPM uint32
}
