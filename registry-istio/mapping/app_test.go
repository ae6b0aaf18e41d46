package mapping_test

import (
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/registry-istio/mapping"
)

func TestAppTarget(t *testing.T) {
	tests := []struct {
		providedBy, namespace string
		scheme                mapping.Scheme
		want, wantErr         string
	}{
		{providedBy: "greeter", namespace: "default", want: "greeter.default.svc.cluster.local:50051"},
		{providedBy: "greeter", namespace: "shop", want: "greeter.shop.svc.cluster.local:50051"},
		{providedBy: "greeter.shop", namespace: "default", want: "greeter.shop.svc.cluster.local:50051"},
		{providedBy: "greeter:20000", namespace: "default", want: "greeter.default.svc.cluster.local:20000"},
		{providedBy: "greeter.shop:20000", namespace: "default", want: "greeter.shop.svc.cluster.local:20000"},
		// The registry's port is the default; AppPort overrides it; the
		// cluster domain comes from the scheme.
		{providedBy: "greeter", namespace: "default", scheme: mapping.Scheme{Port: 8443}, want: "greeter.default.svc.cluster.local:8443"},
		{providedBy: "greeter", namespace: "default", scheme: mapping.Scheme{Port: 8443, AppPort: 9000, ClusterDomain: "Corp.Local"}, want: "greeter.default.svc.corp.local:9000"},
		{providedBy: "greeter:7", namespace: "default", scheme: mapping.Scheme{AppPort: 9000}, want: "greeter.default.svc.cluster.local:7"},

		{providedBy: "", namespace: "default", wantErr: `application "" is empty`},
		{providedBy: "Greeter", namespace: "default", wantErr: `application "Greeter" does not start with a lower-case letter`},
		{providedBy: "9greeter", namespace: "default", wantErr: "does not start with a lower-case letter"},
		{providedBy: "greeter_app", namespace: "default", wantErr: `has '_'; Kubernetes names allow lower-case letters, digits and '-'`},
		{providedBy: "greeter-", namespace: "default", wantErr: "starts or ends with '-'"},
		{providedBy: strings.Repeat("g", 64), namespace: "default", wantErr: "longer than 63 characters"},
		{providedBy: "greeter,billing", namespace: "default", wantErr: "names several applications"},
		{providedBy: "greeter:http", namespace: "default", wantErr: `port "http" is not 1-65535`},
		{providedBy: "greeter:0", namespace: "default", wantErr: `port "0" is not 1-65535`},
		{providedBy: "greeter:", namespace: "default", wantErr: `port "" is not 1-65535`},
		{providedBy: "greeter.shop.svc.cluster.local", namespace: "default", wantErr: "more than app.namespace"},
		{providedBy: "greeter.", namespace: "default", wantErr: `namespace "" is empty`},
		{providedBy: "greeter.Shop", namespace: "default", wantErr: `namespace "Shop" has 'S'`},
		{providedBy: "greeter", namespace: "", wantErr: `the consumer's namespace "" is empty; qualify the reference as app.namespace`},
	}
	for _, tt := range tests {
		t.Run(tt.providedBy, func(t *testing.T) {
			got, err := tt.scheme.AppTarget(tt.providedBy, tt.namespace)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "providedBy") {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("AppTarget = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
