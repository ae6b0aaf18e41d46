package mesh

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/shoalmesh/shoal/sdk/call"
)

// RetryCondition is a class of failure that Envoy's retry_on names.
type RetryCondition uint16

// The retry conditions other than status codes.
const (
	// Retry5xx covers HTTP 5xx responses, resets and connect failures.
	Retry5xx RetryCondition = 1 << iota
	// RetryGatewayError covers 502, 503, 504 and connect failures.
	RetryGatewayError
	// RetryReset covers streams and connections reset before a response.
	RetryReset
	// RetryConnectFailure covers calls that never reached a provider.
	RetryConnectFailure
	// RetryRefusedStream covers streams the provider refused (REFUSED_STREAM).
	RetryRefusedStream
	// RetryRetriable4xx covers HTTP 409.
	RetryRetriable4xx
	// RetryRetriableStatusCodes enables the HTTP statuses in RetryOn.HTTPStatuses.
	RetryRetriableStatusCodes
	// RetryRetriableHeaders is accepted for fidelity; Shoal has no retriable
	// header list yet, so it matches nothing.
	RetryRetriableHeaders
	// RetryEnvoyRateLimited is accepted for fidelity and matches nothing.
	RetryEnvoyRateLimited
)

var retryConditionNames = []struct {
	name string
	cond RetryCondition
}{
	{"5xx", Retry5xx},
	{"gateway-error", RetryGatewayError},
	{"reset", RetryReset},
	{"connect-failure", RetryConnectFailure},
	{"refused-stream", RetryRefusedStream},
	{"retriable-4xx", RetryRetriable4xx},
	{"retriable-status-codes", RetryRetriableStatusCodes},
	{"retriable-headers", RetryRetriableHeaders},
	{"envoy-ratelimited", RetryEnvoyRateLimited},
}

// retryableCodes are the gRPC status names Envoy's retry_on accepts.
var retryableCodes = []call.Code{call.Canceled, call.DeadlineExceeded, call.Internal, call.ResourceExhausted, call.Unavailable}

// RetryOn is a parsed retry_on list: failure classes, gRPC status codes and
// HTTP statuses. The zero value retries nothing.
type RetryOn struct {
	Conditions RetryCondition
	// Codes is a bit set of call.Code values (bit n set = code n retried).
	Codes uint32
	// HTTPStatuses are HTTP statuses retried when
	// RetryRetriableStatusCodes is set (Istio accepts "503" in retryOn).
	HTTPStatuses []int
}

// ParseRetryOn parses a comma-separated retry_on list as Istio writes it,
// for example "connect-failure,refused-stream,unavailable,cancelled,503".
func ParseRetryOn(s string) (RetryOn, error) {
	var r RetryOn
	var errs []string
	for part := range strings.SplitSeq(s, ",") {
		p := strings.TrimSpace(strings.ToLower(part))
		if p == "" {
			continue
		}
		if c, ok := retryConditionByName(p); ok {
			r.Conditions |= c
			continue
		}
		if code, err := call.ParseCode(p); err == nil && slices.Contains(retryableCodes, code) {
			r.Codes |= 1 << code
			continue
		}
		if n, err := strconv.Atoi(p); err == nil && n >= 100 && n <= 599 {
			r.Conditions |= RetryRetriableStatusCodes
			if !slices.Contains(r.HTTPStatuses, n) {
				r.HTTPStatuses = append(r.HTTPStatuses, n)
			}
			continue
		}
		errs = append(errs, strconv.Quote(p))
	}
	if len(errs) > 0 {
		return RetryOn{}, fmt.Errorf("retryOn: unknown condition %s; use 5xx, gateway-error, reset, connect-failure, refused-stream, retriable-4xx, retriable-status-codes, an HTTP status such as 503, or a gRPC status: cancelled, deadline-exceeded, internal, resource-exhausted, unavailable", strings.Join(errs, ", "))
	}
	return r, nil
}

func retryConditionByName(n string) (RetryCondition, bool) {
	for _, c := range retryConditionNames {
		if c.name == n {
			return c.cond, true
		}
	}
	return 0, false
}

// Has reports whether every condition in c is set.
func (r RetryOn) Has(c RetryCondition) bool { return r.Conditions&c == c }

// HasCode reports whether failures with the gRPC status c are retried.
func (r RetryOn) HasCode(c call.Code) bool { return c < 32 && r.Codes&(1<<c) != 0 }

// WithCodes returns a copy of r that also retries the given codes.
func (r RetryOn) WithCodes(codes ...call.Code) RetryOn {
	for _, c := range codes {
		if c < 32 {
			r.Codes |= 1 << c
		}
	}
	return r
}

// IsZero reports whether nothing is retried.
func (r RetryOn) IsZero() bool {
	return r.Conditions == 0 && r.Codes == 0 && len(r.HTTPStatuses) == 0
}

// Retryable reports whether a failed call should be retried. A call that
// never reached a provider is retried under connect-failure, reset, 5xx and
// gateway-error (as Envoy does); any other failure is retried when its
// gRPC status is in Codes. Triple answers failures with HTTP 200 and a
// grpc-status, so 5xx and the HTTP statuses apply to connect failures only.
func (r RetryOn) Retryable(err error) bool {
	if err == nil {
		return false
	}
	if call.IsConnectFailure(err) {
		return r.Conditions&(RetryConnectFailure|RetryReset|Retry5xx|RetryGatewayError|RetryRefusedStream) != 0
	}
	return r.HasCode(call.CodeOf(err))
}

// String returns the list in retry_on syntax, e.g. "connect-failure,unavailable".
func (r RetryOn) String() string {
	var parts []string
	for _, c := range retryConditionNames {
		if r.Conditions&c.cond != 0 && c.cond != RetryRetriableStatusCodes {
			parts = append(parts, c.name)
		}
	}
	for c := call.Code(0); c < 32; c++ {
		if r.HasCode(c) {
			parts = append(parts, c.String())
		}
	}
	if r.Has(RetryRetriableStatusCodes) && len(r.HTTPStatuses) == 0 {
		parts = append(parts, "retriable-status-codes")
	}
	for _, s := range r.HTTPStatuses {
		parts = append(parts, strconv.Itoa(s))
	}
	return strings.Join(parts, ",")
}
