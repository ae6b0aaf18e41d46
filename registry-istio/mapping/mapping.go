package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	networkingv1 "istio.io/api/networking/v1"

	"github.com/shoalmesh/shoal/sdk/registry"
)

// Defaults of the convention.
const (
	DefaultDomain = "shoal.local"
	DefaultPort   = 50051
	// DefaultGroup names the empty group in hosts.
	DefaultGroup = "default"
	// ManagedByLabel marks the ServiceEntries Shoal writes.
	ManagedByLabel = "app.kubernetes.io/managed-by"
)

// Scheme is the convention; its zero value uses the defaults.
type Scheme struct {
	// Domain ends every host (default shoal.local).
	Domain string
	// Port is the ServiceEntry port consumers ask for (default 50051); the
	// provider's real port is the target port.
	Port uint32
	// ClusterDomain ends the hosts of app-level references (default
	// cluster.local): <app>.<namespace>.svc.<ClusterDomain>.
	ClusterDomain string
	// AppPort is the Service port of app-level references that name none
	// (default: Port, so 50051 unless Port is set).
	AppPort uint32
}

func (s Scheme) domain() string {
	if s.Domain == "" {
		return DefaultDomain
	}
	return strings.ToLower(s.Domain)
}

func (s Scheme) port() uint32 {
	if s.Port == 0 {
		return DefaultPort
	}
	return s.Port
}

// Host returns the mesh host for an interface and group.
func (s Scheme) Host(k registry.Key) (string, error) {
	if err := k.Validate(); err != nil {
		return "", err
	}
	var labels []string
	for seg := range strings.SplitSeq(k.Interface, ".") {
		l, err := label(seg)
		if err != nil {
			return "", fmt.Errorf("registry-istio: interface %q: %w", k.Interface, err)
		}
		labels = append(labels, l)
	}
	group := k.Group
	if group == "" {
		group = DefaultGroup
	}
	if group == registry.Any || strings.Contains(group, ",") {
		return "", fmt.Errorf("registry-istio: group %q of %s names several groups; a host needs one group", group, k.Interface)
	}
	g, err := label(group)
	if err != nil {
		return "", fmt.Errorf("registry-istio: group %q: %w", group, err)
	}
	host := strings.Join(append(labels, g, s.domain()), ".")
	if len(host) > 253 {
		return "", fmt.Errorf("registry-istio: host %s for %s is %d characters, above DNS's 253; use a shorter interface or domain", host, k.Interface, len(host))
	}
	return host, nil
}

// Target returns host:port for an interface and group.
func (s Scheme) Target(k registry.Key) (string, error) {
	h, err := s.Host(k)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(h, strconv.FormatUint(uint64(s.port()), 10)), nil
}

// label turns one segment of a name into a DNS label: lower case, "_"
// becomes "-"; anything else outside [a-z0-9-] is refused.
func label(seg string) (string, error) {
	if seg == "" {
		return "", errors.New("empty segment (two dots, or a leading or trailing dot)")
	}
	l := strings.ReplaceAll(strings.ToLower(seg), "_", "-")
	if len(l) > 63 {
		return "", fmt.Errorf("segment %q is longer than 63 characters, DNS's limit", seg)
	}
	for _, r := range l {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return "", fmt.Errorf("segment %q has %q; hosts allow letters, digits, '-' and '_' (as '-')", seg, r)
		}
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return "", fmt.Errorf("segment %q starts or ends with '-' or '_'", seg)
	}
	return l, nil
}

// Application is a provider application and the interfaces it serves.
type Application struct {
	// Name is the application's name, e.g. its app label.
	Name      string
	Namespace string
	// Interfaces are served interfaces with their groups (versions are
	// endpoint labels, not hosts).
	Interfaces []registry.Key
	// TargetPort is the port the provider listens on.
	TargetPort uint32
	// Selector picks the provider's pods or WorkloadEntries (default
	// app: Name).
	Selector map[string]string
}

// ServiceEntry returns the name and spec of the application's ServiceEntry.
func (s Scheme) ServiceEntry(app Application) (string, *networkingv1.ServiceEntry, error) {
	var errs []error
	if app.Name == "" {
		errs = append(errs, errors.New("application name is empty; set it to the app label"))
	}
	if app.TargetPort == 0 || app.TargetPort > 65535 {
		errs = append(errs, fmt.Errorf("target port %d is not 1-65535; set the port the provider listens on", app.TargetPort))
	}
	if len(app.Interfaces) == 0 {
		errs = append(errs, errors.New("no interfaces; list what the application provides"))
	}
	hosts := make([]string, 0, len(app.Interfaces))
	for _, k := range app.Interfaces {
		h, err := s.Host(k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hosts = append(hosts, h)
	}
	if err := errors.Join(errs...); err != nil {
		return "", nil, fmt.Errorf("registry-istio: ServiceEntry for %q: %w", app.Name, err)
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	selector := maps.Clone(app.Selector)
	if len(selector) == 0 {
		selector = map[string]string{"app": app.Name}
	}
	spec := &networkingv1.ServiceEntry{
		Hosts:      hosts,
		Location:   networkingv1.ServiceEntry_MESH_INTERNAL,
		Resolution: networkingv1.ServiceEntry_STATIC,
		Ports: []*networkingv1.ServicePort{{
			Number: s.port(), Name: "tri", Protocol: "GRPC", TargetPort: app.TargetPort,
		}},
		WorkloadSelector: &networkingv1.WorkloadSelector{Labels: selector},
	}
	return app.Name + "-shoal", spec, nil
}

// Manifest renders the application's ServiceEntry as a Kubernetes object in
// JSON, for `kubectl apply -f` or a chart.
func (s Scheme) Manifest(app Application) ([]byte, error) {
	name, spec, err := s.ServiceEntry(app)
	if err != nil {
		return nil, err
	}
	specJSON, err := protojson.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("registry-istio: encode ServiceEntry %s: %w", name, err)
	}
	meta := map[string]any{"name": name, "labels": map[string]string{ManagedByLabel: "shoal", "app": app.Name}}
	if app.Namespace != "" {
		meta["namespace"] = app.Namespace
	}
	return json.MarshalIndent(map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "ServiceEntry",
		"metadata":   meta,
		"spec":       json.RawMessage(specJSON),
	}, "", "  ")
}
