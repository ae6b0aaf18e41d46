package command

import (
	"fmt"
	"strings"

	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// appMeshFiles are the files of a new application that come from
// registry-istio's convention rather than from templates: the chart's
// ServiceEntry (mapping.Scheme.Manifest, as the demo applies it) and a
// canary DestinationRule and VirtualService for its host, applyable as
// deploy/canary.yaml and commented in the chart.
func appMeshFiles(d *appData) (map[string][]byte, error) {
	app := mapping.Application{
		Name:       d.Name,
		Interfaces: []registry.Key{{Interface: d.ServiceFull}},
		TargetPort: config.DefaultPort,
	}
	var scheme mapping.Scheme
	manifest, err := scheme.Manifest(app)
	if err != nil {
		return nil, err
	}
	_, se, err := scheme.ServiceEntry(app)
	if err != nil {
		return nil, err
	}
	host := se.GetHosts()[0]
	var b strings.Builder
	fmt.Fprintf(&b, "# The ServiceEntry that carries %s: written by 'shoal new' with\n", d.ServiceFull)
	b.WriteString("# registry-istio's mapping.Scheme.Manifest (the interface-to-host convention).\n")
	b.WriteString("# Its targetPort is the provider's port (values.yaml port).\n")
	b.WriteString("{{- if .Values.shared }}\n")
	b.Write(manifest)
	b.WriteString("\n{{- end }}\n")
	canary := canaryYAML(d.Name, host)
	var c strings.Builder
	c.WriteString("{{- /*\nA canary between two versions of this app: deploy/canary.yaml, for\n")
	c.WriteString("'shoal dev apply -f' or 'kubectl apply -f' once both versions run (the\n")
	c.WriteString("second release with --set version=v2,shared=false). Shoal's router applies\n")
	c.WriteString("both in the consumer, with no sidecar.\n\n")
	c.WriteString(canary)
	c.WriteString("*/ -}}\n")
	return map[string][]byte{
		"deploy/chart/templates/serviceentry.yaml": []byte(b.String()),
		"deploy/chart/templates/canary.yaml":       []byte(c.String()),
		"deploy/canary.yaml":                       []byte(canary),
	}, nil
}

// canaryYAML is a DestinationRule with subsets v1 and v2 and a
// VirtualService sending 90 % of the calls to v1 and 10 % to v2.
func canaryYAML(name, host string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: %[1]s
spec:
  host: %[2]s
  subsets:
    - name: v1
      labels: {version: v1}
    - name: v2
      labels: {version: v2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: %[1]s
spec:
  hosts: [%[2]s]
  http:
    - route:
        - destination: {host: %[2]s, subset: v1}
          weight: 90
        - destination: {host: %[2]s, subset: v2}
          weight: 10
`, name, host)
}
