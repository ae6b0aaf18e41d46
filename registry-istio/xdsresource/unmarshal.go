package xdsresource

import (
	"errors"
	"fmt"
	"math"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

const resourceWrapperURL = "type.googleapis.com/envoy.service.discovery.v3.Resource"

// ValidationError reports a resource the client rejects. Its text is what the
// client sends to the management server in a NACK.
type ValidationError struct {
	Type Type
	// Name is the resource name, empty if the bytes could not be decoded.
	Name   string
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("%s resource: %s", e.Type, e.Reason)
	}
	return fmt.Sprintf("%s resource %q: %s", e.Type, e.Name, e.Reason)
}

// Unmarshal decodes and validates one resource of type t. On a validation
// failure it returns the resource name (when it could be decoded) with a
// *ValidationError, so the caller can keep the last good version of that
// resource and NACK.
func Unmarshal(t Type, a *anypb.Any) (string, Resource, error) {
	if a == nil {
		return "", nil, &ValidationError{Type: t, Reason: "empty resource"}
	}
	if a.GetTypeUrl() == resourceWrapperURL {
		w := &discoveryv3.Resource{}
		if err := proto.Unmarshal(a.GetValue(), w); err != nil {
			return "", nil, &ValidationError{Type: t, Reason: "cannot decode envoy.service.discovery.v3.Resource wrapper: " + err.Error()}
		}
		name, r, err := Unmarshal(t, w.GetResource())
		if name == "" {
			name = w.GetName()
		}
		return name, r, err
	}
	if a.GetTypeUrl() != t.URL() {
		return "", nil, &ValidationError{Type: t, Reason: fmt.Sprintf("type_url %q in a %s response, want %q", a.GetTypeUrl(), t, t.URL())}
	}
	var (
		r   Resource
		err error
		n   string
	)
	switch t {
	case ListenerType:
		n, r, err = unmarshalListener(a.GetValue())
	case RouteConfigType:
		n, r, err = unmarshalRouteConfig(a.GetValue())
	case ClusterType:
		n, r, err = unmarshalCluster(a.GetValue())
	case EndpointsType:
		n, r, err = unmarshalEndpoints(a.GetValue())
	default:
		return "", nil, &ValidationError{Type: t, Reason: "unknown resource type"}
	}
	if err != nil {
		return n, nil, &ValidationError{Type: t, Name: n, Reason: err.Error()}
	}
	return n, r, nil
}

// decode unmarshals b into m, naming the message on failure.
func decode(b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("cannot decode %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

// duration converts a protobuf duration, rejecting invalid or negative ones.
func duration(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	v := d.AsDuration()
	if v < 0 {
		return 0, fmt.Errorf("%s: negative duration %v", field, v)
	}
	return v, nil
}

// ppm converts a fractional percent into parts per million, capped at 100%.
func ppm(f *typev3.FractionalPercent) uint32 {
	if f == nil {
		return 0
	}
	n := uint64(f.GetNumerator())
	switch f.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		n *= 10_000
	case typev3.FractionalPercent_TEN_THOUSAND:
		n *= 100
	case typev3.FractionalPercent_MILLION:
	default:
		return 0
	}
	return uint32(min(n, 1_000_000))
}

// fromADS checks that a config source points back to the ADS stream.
func fromADS(field string, cs *corev3.ConfigSource) error {
	if cs == nil {
		return fmt.Errorf("%s is missing: it must be {ads: {}} (or self)", field)
	}
	if cs.GetAds() == nil && cs.GetSelf() == nil {
		return fmt.Errorf("%s is not ADS: Shoal fetches everything on one ADS stream, so it must be {ads: {}} (or self)", field)
	}
	return nil
}

var errNoName = errors.New("resource has no name")

func checkedAdd(total uint64, w uint32) (uint64, error) {
	total += uint64(w)
	if total > math.MaxUint32 {
		return 0, fmt.Errorf("sum of weights %d exceeds %d", total, uint32(math.MaxUint32))
	}
	return total, nil
}
