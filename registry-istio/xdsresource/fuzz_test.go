package xdsresource_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
	"github.com/shoalmesh/shoal/registry-istio/xdstest"
)

// FuzzUnmarshal feeds arbitrary bytes as each resource type. Unmarshal must
// never panic, and must return either a resource or a ValidationError.
func FuzzUnmarshal(f *testing.F) {
	seeds := []proto.Message{
		xdstest.Listener(host, port),
		xdstest.RouteConfig(host, port, xdstest.WithFault(xdstest.WithTimeout(xdstest.DefaultRoute("c"), 1e9), 1e9, 10, 14, 10)),
		xdstest.WithOutlierDetection(xdstest.WithRingHash(xdstest.Cluster(host, "v1", port), 64), 3, 1e9, 1e9, 10),
		xdstest.ClusterLoadAssignment("c", xdstest.Endpoint{IP: "10.0.0.1", Port: 1, Labels: map[string]string{"a": "b"}}),
		// Index 4 is an LDS seed again: a server-side listener with RBAC.
		xdstest.InboundListener(inboundIP, port, true, istiodPolicies()...),
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	f.Add(uint8(0), []byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		rt := xdsresource.Types[int(typ)%len(xdsresource.Types)]
		name, r, err := xdsresource.Unmarshal(rt, &anypb.Any{TypeUrl: rt.URL(), Value: b})
		if err != nil {
			if r != nil {
				t.Fatalf("both a resource and an error: %v", err)
			}
			var ve *xdsresource.ValidationError
			if !asValidationError(err, &ve) || ve.Type != rt {
				t.Fatalf("error %T %v is not a ValidationError of %v", err, err, rt)
			}
			return
		}
		if r == nil || name == "" || r.ResourceName() != name || r.ResourceType() != rt {
			t.Fatalf("accepted resource inconsistent: name %q resource %+v", name, r)
		}
	})
}
