package command

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// The codes of `shoal analyze` warnings.
const (
	codeOutlierDropped   = "SHOAL0001" // outlierDetection never reaches a proxyless client
	codeLoadBalancer     = "SHOAL0002" // a load balancer setting the generator drops or Shoal does not run
	codeConnectionPool   = "SHOAL0003" // connection pool fields the generator drops
	codeTLSMode          = "SHOAL0004" // a DestinationRule TLS mode other than ISTIO_MUTUAL
	codePermissive       = "SHOAL0005" // PERMISSIVE: proxyless servers stay plaintext
	codeSubsetNoEndpoint = "SHOAL0006" // a subset no endpoint of its host carries
	codeHostNotCarried   = "SHOAL0007" // a VirtualService host no ServiceEntry or Service carries
)

// finding is one warning of `shoal analyze`.
type finding struct {
	Code     string `json:"code"`
	Level    string `json:"level"`
	Resource string `json:"resource"`
	Source   string `json:"source,omitempty"`
	Message  string `json:"message"`
}

// object is a Kubernetes object as far as the analysis reads it.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec json.RawMessage `json:"spec"`
	// source is where the object came from (file and document), for -f.
	source string
}

func (o *object) ref() string {
	return o.Kind + " " + o.Metadata.Namespace + "/" + o.Metadata.Name
}

type labelSelector struct {
	Labels map[string]string `json:"labels"`
}

type serviceEntrySpec struct {
	Hosts     []string `json:"hosts"`
	Endpoints []struct {
		Labels map[string]string `json:"labels"`
	} `json:"endpoints"`
	WorkloadSelector *labelSelector `json:"workloadSelector"`
}

type trafficPolicy struct {
	LoadBalancer *struct {
		Simple         string `json:"simple"`
		ConsistentHash *struct {
			HTTPCookie             json.RawMessage `json:"httpCookie"`
			UseSourceIP            bool            `json:"useSourceIp"`
			HTTPQueryParameterName string          `json:"httpQueryParameterName"`
		} `json:"consistentHash"`
		LocalityLbSetting json.RawMessage `json:"localityLbSetting"`
	} `json:"loadBalancer"`
	ConnectionPool *struct {
		TCP  map[string]json.RawMessage `json:"tcp"`
		HTTP map[string]json.RawMessage `json:"http"`
	} `json:"connectionPool"`
	OutlierDetection json.RawMessage `json:"outlierDetection"`
	TLS              *struct {
		Mode string `json:"mode"`
	} `json:"tls"`
	PortLevelSettings []trafficPolicy `json:"portLevelSettings"`
}

type destinationRuleSpec struct {
	Host          string         `json:"host"`
	TrafficPolicy *trafficPolicy `json:"trafficPolicy"`
	Subsets       []struct {
		Name          string            `json:"name"`
		Labels        map[string]string `json:"labels"`
		TrafficPolicy *trafficPolicy    `json:"trafficPolicy"`
	} `json:"subsets"`
}

type virtualServiceSpec struct {
	Hosts []string `json:"hosts"`
}

type peerAuthenticationSpec struct {
	MTLS *struct {
		Mode string `json:"mode"`
	} `json:"mtls"`
	PortLevelMTLS map[string]struct {
		Mode string `json:"mode"`
	} `json:"portLevelMtls"`
}

type serviceSpec struct {
	Selector map[string]string `json:"selector"`
}

type deploymentSpec struct {
	Template struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	} `json:"template"`
}

// clusterDomain is the domain of Kubernetes Service hosts.
const clusterDomain = "svc.cluster.local"

// analysis holds the objects under analysis, indexed.
type analysis struct {
	objs     []*object
	findings []finding
	// carried maps a host to true when a ServiceEntry or Service carries it.
	carried map[string]bool
	// workloads maps a host to the label sets of its known endpoints.
	workloads map[string][]map[string]string
}

func (a *analysis) warn(o *object, code, format string, args ...any) {
	a.findings = append(a.findings, finding{
		Code: code, Level: "Warning", Resource: o.ref(), Source: o.source,
		Message: fmt.Sprintf(format, args...),
	})
}

// analyze runs every check over objs and returns the findings, sorted by
// resource then code.
func analyze(objs []*object) ([]finding, error) {
	a := &analysis{objs: objs, carried: map[string]bool{}, workloads: map[string][]map[string]string{}}
	for _, o := range objs {
		if o.Metadata.Namespace == "" {
			o.Metadata.Namespace = "default"
		}
	}
	if err := a.index(); err != nil {
		return nil, err
	}
	for _, o := range objs {
		var err error
		switch o.Kind {
		case "DestinationRule":
			err = a.destinationRule(o)
		case "VirtualService":
			err = a.virtualService(o)
		case "PeerAuthentication":
			err = a.peerAuthentication(o)
		}
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(a.findings, func(i, j int) bool {
		if a.findings[i].Resource != a.findings[j].Resource {
			return a.findings[i].Resource < a.findings[j].Resource
		}
		return a.findings[i].Code < a.findings[j].Code
	})
	return a.findings, nil
}

func decodeSpec(o *object, v any) error {
	if len(o.Spec) == 0 {
		return nil
	}
	if err := json.Unmarshal(o.Spec, v); err != nil {
		return dataErrorf("%s%s: spec: %v", o.ref(), sourceSuffix(o), err)
	}
	return nil
}

func sourceSuffix(o *object) string {
	if o.source == "" {
		return ""
	}
	return " (" + o.source + ")"
}

// index finds which hosts are carried and the labels of their endpoints:
// a ServiceEntry's inline endpoints, or the WorkloadEntries, Pods and
// Deployments of its namespace its workloadSelector selects; a Service's
// Pods and Deployments by its selector.
func (a *analysis) index() error {
	type workload struct {
		ns     string
		labels map[string]string
		entry  bool // a WorkloadEntry
	}
	var wls []workload
	for _, o := range a.objs {
		switch o.Kind {
		case "WorkloadEntry":
			var s labelSelector
			if err := decodeSpec(o, &s); err != nil {
				return err
			}
			wls = append(wls, workload{o.Metadata.Namespace, s.Labels, true})
		case "Pod":
			wls = append(wls, workload{ns: o.Metadata.Namespace, labels: o.Metadata.Labels})
		case "Deployment":
			var s deploymentSpec
			if err := decodeSpec(o, &s); err != nil {
				return err
			}
			wls = append(wls, workload{ns: o.Metadata.Namespace, labels: s.Template.Metadata.Labels})
		}
	}
	selected := func(ns string, sel map[string]string, entries bool) []map[string]string {
		var out []map[string]string
		for _, w := range wls {
			if w.ns == ns && (entries || !w.entry) && matches(w.labels, sel) {
				out = append(out, w.labels)
			}
		}
		return out
	}
	for _, o := range a.objs {
		switch o.Kind {
		case "ServiceEntry":
			var s serviceEntrySpec
			if err := decodeSpec(o, &s); err != nil {
				return err
			}
			var eps []map[string]string
			for _, ep := range s.Endpoints {
				eps = append(eps, ep.Labels)
			}
			if s.WorkloadSelector != nil {
				eps = append(eps, selected(o.Metadata.Namespace, s.WorkloadSelector.Labels, true)...)
			}
			for _, h := range s.Hosts {
				a.carried[h] = true
				a.workloads[h] = append(a.workloads[h], eps...)
			}
		case "Service":
			var s serviceSpec
			if err := decodeSpec(o, &s); err != nil {
				return err
			}
			h := o.Metadata.Name + "." + o.Metadata.Namespace + "." + clusterDomain
			a.carried[h] = true
			if len(s.Selector) > 0 {
				a.workloads[h] = append(a.workloads[h], selected(o.Metadata.Namespace, s.Selector, false)...)
			}
		}
	}
	return nil
}

// matches reports whether labels carry every label of sel.
func matches(labels, sel map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// fqdn qualifies a short host name the way Istio does: relative to the
// namespace of the object that names it.
func fqdn(host, ns string) string {
	if strings.Contains(host, ".") || strings.HasPrefix(host, "*") {
		return host
	}
	return host + "." + ns + "." + clusterDomain
}

func (a *analysis) destinationRule(o *object) error {
	var s destinationRuleSpec
	if err := decodeSpec(o, &s); err != nil {
		return err
	}
	a.trafficPolicy(o, "trafficPolicy", s.TrafficPolicy)
	host := fqdn(s.Host, o.Metadata.Namespace)
	eps := a.workloads[host]
	for _, sub := range s.Subsets {
		a.trafficPolicy(o, "subset "+sub.Name, sub.TrafficPolicy)
		if len(eps) == 0 || len(sub.Labels) == 0 {
			continue // endpoints unknown here: nothing to compare with
		}
		if !slices.ContainsFunc(eps, func(l map[string]string) bool { return matches(l, sub.Labels) }) {
			a.warn(o, codeSubsetNoEndpoint, "subset %s selects %s, which none of the %d known endpoints of %s carries: calls routed to it fail with UNAVAILABLE",
				sub.Name, formatLabels(sub.Labels), len(eps), host)
		}
	}
	return nil
}

func (a *analysis) trafficPolicy(o *object, where string, p *trafficPolicy) {
	if p == nil {
		return
	}
	if len(p.OutlierDetection) > 0 && string(p.OutlierDetection) != "null" {
		a.warn(o, codeOutlierDropped, "%s: outlierDetection is not sent to proxyless clients (istiod's grpc generator drops it): Shoal ejects no endpoint for it; configure ejection on the consumer (router-mesh WithDefaultOutlierDetection)", where)
	}
	if lb := p.LoadBalancer; lb != nil {
		switch lb.Simple {
		case "", "ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN":
		default:
			a.warn(o, codeLoadBalancer, "%s: loadBalancer.simple %s is dropped by istiod's grpc generator (it sends ROUND_ROBIN, LEAST_REQUEST and consistent hash only): Shoal uses round robin", where, lb.Simple)
		}
		if ch := lb.ConsistentHash; ch != nil {
			var keys []string
			if len(ch.HTTPCookie) > 0 && string(ch.HTTPCookie) != "null" {
				keys = append(keys, "httpCookie")
			}
			if ch.UseSourceIP {
				keys = append(keys, "useSourceIp")
			}
			if ch.HTTPQueryParameterName != "" {
				keys = append(keys, "httpQueryParameterName")
			}
			if len(keys) > 0 {
				a.warn(o, codeLoadBalancer, "%s: consistentHash on %s is not run by Shoal's router (an RPC has no such key): hash on httpHeaderName, which also matches attachments", where, strings.Join(keys, ", "))
			}
		}
		if len(lb.LocalityLbSetting) > 0 && string(lb.LocalityLbSetting) != "null" {
			a.warn(o, codeLoadBalancer, "%s: localityLbSetting is not run by Shoal's router yet: endpoints of every locality share the calls", where)
		}
	}
	if cp := p.ConnectionPool; cp != nil {
		var dropped []string
		for _, k := range slices.Sorted(maps.Keys(cp.TCP)) {
			dropped = append(dropped, "tcp."+k)
		}
		for _, k := range slices.Sorted(maps.Keys(cp.HTTP)) {
			if k != "http2MaxRequests" {
				dropped = append(dropped, "http."+k)
			}
		}
		if len(dropped) > 0 {
			a.warn(o, codeConnectionPool, "%s: connectionPool %s not sent to proxyless clients (istiod's grpc generator sends http2MaxRequests only)", where, strings.Join(dropped, ", ")+plural(len(dropped), " is", " are"))
		}
	}
	if p.TLS != nil && p.TLS.Mode != "" && p.TLS.Mode != "ISTIO_MUTUAL" && p.TLS.Mode != "DISABLE" {
		a.warn(o, codeTLSMode, "%s: tls.mode %s is not sent to proxyless clients (istiod's grpc generator supports ISTIO_MUTUAL only)", where, p.TLS.Mode)
	}
	for i := range p.PortLevelSettings {
		a.trafficPolicy(o, fmt.Sprintf("%s portLevelSettings[%d]", where, i), &p.PortLevelSettings[i])
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (a *analysis) virtualService(o *object) error {
	var s virtualServiceSpec
	if err := decodeSpec(o, &s); err != nil {
		return err
	}
	for _, h := range s.Hosts {
		if strings.Contains(h, "*") {
			continue
		}
		host := fqdn(h, o.Metadata.Namespace)
		if !a.carried[host] {
			a.warn(o, codeHostNotCarried, "host %s is carried by no ServiceEntry or Service: istiod sends no route for it and Shoal consumers of it find no service; apply the ServiceEntry that carries the interface", host)
		}
	}
	return nil
}

func (a *analysis) peerAuthentication(o *object) error {
	var s peerAuthenticationSpec
	if err := decodeSpec(o, &s); err != nil {
		return err
	}
	const why = "proxyless servers accept plaintext under PERMISSIVE (istiod sends them no TLS unless the workload is labelled security.istio.io/tlsMode=istio): use STRICT"
	if s.MTLS != nil && s.MTLS.Mode == "PERMISSIVE" {
		a.warn(o, codePermissive, "mtls.mode PERMISSIVE: %s", why)
	}
	for _, port := range slices.Sorted(maps.Keys(s.PortLevelMTLS)) {
		if s.PortLevelMTLS[port].Mode == "PERMISSIVE" {
			a.warn(o, codePermissive, "port %s: mtls.mode PERMISSIVE: %s", port, why)
		}
	}
	return nil
}

func formatLabels(l map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(l) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ",")
}
