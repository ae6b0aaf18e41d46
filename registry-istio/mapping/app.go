package mapping

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultClusterDomain is the Kubernetes DNS domain of app-level hosts.
const DefaultClusterDomain = "cluster.local"

// AppRef is an app-level reference, parsed from a key's ProvidedBy: the
// providing application, its namespace and the port to call, each empty or
// zero when the reference leaves it to the defaults.
type AppRef struct {
	// App is the application's Kubernetes Service name.
	App string
	// Namespace is the application's namespace; empty means the consumer's.
	Namespace string
	// Port is the Service port; 0 means the scheme's app port.
	Port uint32
}

// ParseAppRef reads a ProvidedBy value: "app", "app.namespace", "app:port"
// or "app.namespace:port". App and namespace are DNS labels, as Kubernetes
// Service and namespace names are; a comma-separated list (which Dubbo
// allows) is refused, since a reference is routed to one application's host.
func ParseAppRef(providedBy string) (AppRef, error) {
	bad := func(format string, args ...any) (AppRef, error) {
		return AppRef{}, fmt.Errorf("registry-istio: providedBy %q: %s", providedBy, fmt.Sprintf(format, args...))
	}
	if strings.Contains(providedBy, ",") {
		return bad("names several applications; registry-istio routes a reference to one application's Service, so name one")
	}
	name, port := providedBy, ""
	if i := strings.LastIndexByte(providedBy, ':'); i >= 0 {
		name, port = providedBy[:i], providedBy[i+1:]
	}
	var ref AppRef
	if port != "" || strings.HasSuffix(providedBy, ":") {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return bad("port %q is not 1-65535; write app[.namespace][:port], such as greeter.shop:20000", port)
		}
		ref.Port = uint32(n)
	}
	app, ns, qualified := strings.Cut(name, ".")
	if strings.Contains(ns, ".") {
		return bad("%q has more than app.namespace; write app[.namespace][:port], such as greeter.shop:20000 (a full host goes in the interface as xds:///host:port)", name)
	}
	if err := dnsLabel(app, true); err != nil {
		return bad("application %q %v; name the application's Kubernetes Service, such as greeter", app, err)
	}
	if qualified {
		if err := dnsLabel(ns, false); err != nil {
			return bad("namespace %q %v", ns, err)
		}
	}
	ref.App, ref.Namespace = app, ns
	return ref, nil
}

// dnsLabel checks a Kubernetes name: a lower-case DNS label of at most 63
// characters; a Service name must also start with a letter.
func dnsLabel(s string, service bool) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > 63:
		return errors.New("is longer than 63 characters, Kubernetes' limit")
	case service && (s[0] < 'a' || s[0] > 'z'):
		return errors.New("does not start with a lower-case letter, as Kubernetes Service names do")
	case s[0] == '-' || s[len(s)-1] == '-':
		return errors.New("starts or ends with '-'")
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return fmt.Errorf("has %q; Kubernetes names allow lower-case letters, digits and '-'", r)
		}
	}
	return nil
}

func (s Scheme) clusterDomain() string {
	if s.ClusterDomain == "" {
		return DefaultClusterDomain
	}
	return strings.ToLower(s.ClusterDomain)
}

func (s Scheme) appPort() uint32 {
	if s.AppPort == 0 {
		return s.port()
	}
	return s.AppPort
}

// AppTarget returns the host:port an app-level reference resolves to: the
// application's Kubernetes Service,
//
//	<app>.<namespace>.svc.<cluster domain>:<port>
//
// with the namespace from the reference, else namespace (the consumer's),
// and the port from the reference, else the scheme's app port. Any Istio
// host of that name serves: the Service istiod derives from Kubernetes, or
// a ServiceEntry declaring it for workloads outside Kubernetes.
func (s Scheme) AppTarget(providedBy, namespace string) (string, error) {
	ref, err := ParseAppRef(providedBy)
	if err != nil {
		return "", err
	}
	if ref.Namespace == "" {
		ref.Namespace = namespace
	}
	if err := dnsLabel(ref.Namespace, false); err != nil {
		return "", fmt.Errorf("registry-istio: providedBy %q: the consumer's namespace %q %w; qualify the reference as app.namespace", providedBy, ref.Namespace, err)
	}
	if ref.Port == 0 {
		ref.Port = s.appPort()
	}
	host := ref.App + "." + ref.Namespace + ".svc." + s.clusterDomain()
	return net.JoinHostPort(host, strconv.FormatUint(uint64(ref.Port), 10)), nil
}
