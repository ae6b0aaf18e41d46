package peer_test

import (
	"encoding/base64"
	"maps"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/shoalmesh/shoal/observability/peer"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestFromLookupReadsIstioEnvironment(t *testing.T) {
	w, err := peer.FromLookup(env(map[string]string{
		"POD_NAME": "greeter-v1-7d9f-abcde", "POD_NAMESPACE": "shop", "INSTANCE_IP": "10.0.0.7",
		"ISTIO_META_WORKLOAD_NAME": "greeter-v1", "ISTIO_META_CLUSTER_ID": "east", "SERVICE_ACCOUNT": "greeter",
		"ISTIO_METAJSON_LABELS": `{"app":"greeter","version":"v1"}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"Name": {w.Name, "greeter-v1-7d9f-abcde"}, "Namespace": {w.Namespace, "shop"}, "WorkloadName": {w.WorkloadName, "greeter-v1"},
		"ClusterID": {w.ClusterID, "east"}, "App": {w.App(), "greeter"}, "Version": {w.Version(), "v1"},
		"CanonicalService": {w.CanonicalService(), "greeter"}, "CanonicalRevision": {w.CanonicalRevision(), "v1"},
		"Principal": {w.Principal(), "spiffe://cluster.local/ns/shop/sa/greeter"},
		"NodeID":    {w.NodeID(), "sidecar~10.0.0.7~greeter-v1-7d9f-abcde.shop~shop.svc.cluster.local"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
}

func TestFromLookupDefaults(t *testing.T) {
	w, err := peer.FromLookup(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if w.Namespace != "default" || w.ClusterID != "Kubernetes" || w.ServiceAccount != "default" || w.WorkloadName == "" {
		t.Errorf("defaults: %+v", w)
	}
	if w.App() != "unknown" || w.Version() != "unknown" || w.CanonicalService() != w.WorkloadName || w.CanonicalRevision() != "latest" {
		t.Errorf("label defaults: app %q version %q canonical %q/%q", w.App(), w.Version(), w.CanonicalService(), w.CanonicalRevision())
	}
	if _, err := peer.FromLookup(env(map[string]string{"ISTIO_METAJSON_LABELS": "app=x"})); err == nil || !strings.Contains(err.Error(), "ISTIO_METAJSON_LABELS") {
		t.Errorf("bad labels JSON: err = %v", err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	w := peer.Workload{
		Name: "p-1", Namespace: "ns", WorkloadName: "p", ClusterID: "c", MeshID: "m", ServiceAccount: "sa",
		Owner: "kubernetes://apis/apps/v1/namespaces/ns/deployments/p", InstanceIP: "10.1.2.3",
		Labels: map[string]string{"app": "p", "version": "v2"},
	}
	v, err := w.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base64.StdEncoding.DecodeString(v); err != nil {
		t.Fatalf("not padded base64 as Envoy sends: %v", err)
	}
	for _, in := range []string{v, strings.TrimRight(v, "=")} { // Envoy's padded and grpc-go's raw form
		got, err := peer.Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != w.Name || got.Namespace != w.Namespace || got.WorkloadName != w.WorkloadName || got.ClusterID != w.ClusterID ||
			got.MeshID != w.MeshID || got.ServiceAccount != w.ServiceAccount || got.Owner != w.Owner || got.InstanceIP != w.InstanceIP ||
			!maps.Equal(got.Labels, w.Labels) {
			t.Errorf("Decode(Encode(w)) = %+v, want %+v", got, w)
		}
	}
}

// TestDecodeCSM reads the Struct grpc-go's CSM plugin sends (its own keys,
// unpadded base64).
func TestDecodeCSM(t *testing.T) {
	s, _ := structpb.NewStruct(map[string]any{
		"type": "gcp_kubernetes_engine", "canonical_service": "checkout", "workload_name": "checkout-v3",
		"namespace_name": "shop", "cluster_name": "east",
	})
	b, _ := proto.Marshal(s)
	w, err := peer.Decode(base64.RawStdEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	if w.WorkloadName != "checkout-v3" || w.Namespace != "shop" || w.ClusterID != "east" || w.CanonicalService() != "checkout" {
		t.Errorf("CSM metadata read as %+v (canonical %q)", w, w.CanonicalService())
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, in := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte{0xff, 0xff, 0xff})} {
		if _, err := peer.Decode(in); err == nil {
			t.Errorf("Decode(%q) succeeded", in)
		}
	}
}

func FuzzDecode(f *testing.F) {
	w := peer.Workload{Name: "a", Namespace: "b", Labels: map[string]string{"app": "a"}}
	v, _ := w.Encode()
	f.Add(v)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if got, err := peer.Decode(s); err == nil {
			if _, err := got.Encode(); err != nil {
				t.Errorf("decoded %q but cannot encode it again: %v", s, err)
			}
		}
	})
}
