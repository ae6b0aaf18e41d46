package mapping_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/sdk/registry"
)

func TestHostAndTarget(t *testing.T) {
	tests := []struct {
		key     registry.Key
		scheme  mapping.Scheme
		want    string
		wantErr string
	}{
		{key: registry.Key{Interface: "greet.GreetService"}, want: "greet.greetservice.default.shoal.local:50051"},
		{key: registry.Key{Interface: "greet.GreetService", Group: "blue", Version: "v2"}, want: "greet.greetservice.blue.shoal.local:50051"},
		{key: registry.Key{Interface: "org.apache.dubbo.demo.DemoService"}, want: "org.apache.dubbo.demo.demoservice.default.shoal.local:50051"},
		{key: registry.Key{Interface: "com.acme.order_v2.OrderService", Group: "Team_A"}, want: "com.acme.order-v2.orderservice.team-a.shoal.local:50051"},
		{key: registry.Key{Interface: "greet.GreetService"}, scheme: mapping.Scheme{Domain: "Mesh.Example", Port: 8443}, want: "greet.greetservice.default.mesh.example:8443"},
		// The group label keeps hosts apart: an interface "x.blue" (default
		// group) and interface "x" in group "blue" differ.
		{key: registry.Key{Interface: "x.blue"}, want: "x.blue.default.shoal.local:50051"},
		{key: registry.Key{Interface: "x", Group: "blue"}, want: "x.blue.shoal.local:50051"},
		{key: registry.Key{Interface: ""}, wantErr: "empty interface name"},
		{key: registry.Key{Interface: "greet..GreetService"}, wantErr: "empty segment"},
		{key: registry.Key{Interface: "Outer$Inner"}, wantErr: `has '$'`},
		{key: registry.Key{Interface: "_private.Svc"}, wantErr: "starts or ends with"},
		{key: registry.Key{Interface: "a.B", Group: "*"}, wantErr: "names several groups"},
		{key: registry.Key{Interface: "a.B", Group: "x,y"}, wantErr: "names several groups"},
		{key: registry.Key{Interface: strings.Repeat("a", 64)}, wantErr: "longer than 63"},
		{key: registry.Key{Interface: strings.Repeat(strings.Repeat("a", 60)+".", 4) + "b"}, wantErr: "above DNS's 253"},
	}
	for _, tt := range tests {
		t.Run(tt.key.String(), func(t *testing.T) {
			got, err := tt.scheme.Target(tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Target = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestManifest(t *testing.T) {
	app := mapping.Application{
		Name: "greeter", Namespace: "shop", TargetPort: 20000,
		Interfaces: []registry.Key{{Interface: "greet.GreetService"}, {Interface: "greet.GreetService", Group: "blue"}, {Interface: "greet.GreetService"}},
	}
	b, err := mapping.Scheme{}.Manifest(app)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name, Namespace string
			Labels          map[string]string
		} `json:"metadata"`
		Spec struct {
			Hosts      []string `json:"hosts"`
			Location   string   `json:"location"`
			Resolution string   `json:"resolution"`
			Ports      []struct {
				Number, TargetPort uint32
				Name, Protocol     string
			} `json:"ports"`
			WorkloadSelector struct {
				Labels map[string]string `json:"labels"`
			} `json:"workloadSelector"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if m.APIVersion != "networking.istio.io/v1" || m.Kind != "ServiceEntry" || m.Metadata.Name != "greeter-shoal" || m.Metadata.Namespace != "shop" ||
		m.Metadata.Labels[mapping.ManagedByLabel] != "shoal" {
		t.Fatalf("header %+v\n%s", m, b)
	}
	wantHosts := []string{"greet.greetservice.blue.shoal.local", "greet.greetservice.default.shoal.local"}
	if !slices.Equal(m.Spec.Hosts, wantHosts) || m.Spec.Location != "MESH_INTERNAL" || m.Spec.Resolution != "STATIC" {
		t.Fatalf("spec %+v\n%s", m.Spec, b)
	}
	if len(m.Spec.Ports) != 1 || m.Spec.Ports[0].Number != 50051 || m.Spec.Ports[0].TargetPort != 20000 || m.Spec.Ports[0].Protocol != "GRPC" ||
		m.Spec.WorkloadSelector.Labels["app"] != "greeter" {
		t.Fatalf("ports/selector %+v\n%s", m.Spec, b)
	}

	if _, err := (mapping.Scheme{}).Manifest(mapping.Application{Interfaces: []registry.Key{{Interface: "a..b"}}}); err == nil ||
		!strings.Contains(err.Error(), "application name is empty") || !strings.Contains(err.Error(), "target port 0") || !strings.Contains(err.Error(), "empty segment") {
		t.Fatalf("err = %v, want every problem named", err)
	}
}
