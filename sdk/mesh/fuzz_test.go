package mesh_test

import (
	"slices"
	"testing"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// FuzzParseRetryOn: arbitrary retryOn strings never panic, and an accepted
// one round-trips through String.
func FuzzParseRetryOn(f *testing.F) {
	f.Add("connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes")
	f.Add("5xx,503,gateway-error,DEADLINE_EXCEEDED")
	f.Add(",,")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := mesh.ParseRetryOn(s)
		if err != nil {
			return
		}
		back, err := mesh.ParseRetryOn(r.String())
		if err != nil {
			t.Fatalf("String() of %q = %q does not parse: %v", s, r.String(), err)
		}
		if back.Conditions != r.Conditions || back.Codes != r.Codes || !slices.Equal(back.HTTPStatuses, r.HTTPStatuses) {
			t.Fatalf("round trip of %q: %+v != %+v", s, back, r)
		}
	})
}
