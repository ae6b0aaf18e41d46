package bootstrap

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Well-known istiod ports and paths.
const (
	PlaintextPort = "15010"
	TLSPort       = "15012"
	// DefaultServerName is the name istiod's serving certificate carries.
	DefaultServerName = "istiod.istio-system.svc"
	// DefaultRootCertFile is where Istio mounts its root certificate
	// (the istio-ca-root-cert ConfigMap) in a pod.
	DefaultRootCertFile = "/var/run/secrets/istio/root-cert.pem"
	// DefaultTokenFile is the projected service account token with the
	// istio-ca audience; ServiceAccountTokenFile is the fallback.
	DefaultTokenFile        = "/var/run/secrets/tokens/istio-token"                 //nolint:gosec // a path, not a credential
	ServiceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token" //nolint:gosec // a path, not a credential
	// GeneratorGRPC is the GENERATOR metadata value selecting istiod's
	// proxyless generator.
	GeneratorGRPC = "grpc"
)

// Config is everything the ADS client needs to reach istiod.
type Config struct {
	// ServerURI is istiod's host:port, for example
	// "istiod.istio-system.svc:15012".
	ServerURI string
	// TLS is nil for plaintext (port 15010).
	TLS *TLS
	// Node identifies this process to istiod.
	Node Node
	// ServerFeatures are copied from a gRPC bootstrap file; informational.
	ServerFeatures []string
	// CertificateProviders are a gRPC bootstrap file's
	// certificate_providers by instance name (istio-agent writes a
	// file_watcher named "default"); identity.FromBootstrap reads them.
	CertificateProviders map[string]CertificateProvider
}

// TLS configures the secure channel to istiod (port 15012).
type TLS struct {
	// RootCertFile is a PEM file with the CA that signed istiod's
	// certificate; empty uses the system roots.
	RootCertFile string
	// ServerName is the name verified in istiod's certificate.
	ServerName string
	// TokenFile, when set, holds a JWT sent as "authorization: Bearer" on
	// every stream; it is read again on each stream, as tokens rotate.
	TokenFile string
}

// Node is the xDS node: who this process is to istiod.
type Node struct {
	ID       string
	Cluster  string
	Locality Locality
	// Metadata holds JSON-compatible values (string, float64, bool, nil,
	// []any, map[string]any).
	Metadata map[string]any
}

// Namespace is the workload's namespace: the NAMESPACE metadata, else the
// namespace in the node ID (sidecar~ip~pod.namespace~...), else "".
func (n Node) Namespace() string {
	if ns, ok := n.Metadata["NAMESPACE"].(string); ok && ns != "" {
		return ns
	}
	if parts := strings.Split(n.ID, "~"); len(parts) == 4 {
		if _, ns, ok := strings.Cut(parts[2], "."); ok {
			return ns
		}
	}
	return ""
}

// ClusterDomain is the cluster's DNS domain, read from the node ID's last
// part (<namespace>.svc.<domain>); "cluster.local" when the ID has none.
func (n Node) ClusterDomain() string {
	if parts := strings.Split(n.ID, "~"); len(parts) == 4 {
		if _, domain, ok := strings.Cut(parts[3], ".svc."); ok && domain != "" {
			return domain
		}
	}
	return "cluster.local"
}

// Locality is where this process runs.
type Locality struct {
	Region, Zone, SubZone string
}

// Validate checks c and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	if c.ServerURI == "" {
		errs = append(errs, errors.New("no istiod address; set SHOAL_XDS_ADDRESS (for example istiod.istio-system.svc:15012)"))
	} else if _, port, err := net.SplitHostPort(c.ServerURI); !strings.HasPrefix(c.ServerURI, "unix:") && (err != nil || port == "") {
		// (unix: is a local socket, as istio-agent offers to proxyless gRPC.)
		errs = append(errs, fmt.Errorf("istiod address %q is not host:port; set SHOAL_XDS_ADDRESS like istiod.istio-system.svc:15012", c.ServerURI))
	}
	if c.Node.ID == "" {
		errs = append(errs, errors.New("no node id; istiod needs sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local (set POD_NAME, POD_NAMESPACE and INSTANCE_IP)"))
	} else if parts := strings.Split(c.Node.ID, "~"); len(parts) != 4 {
		errs = append(errs, fmt.Errorf("node id %q does not have istiod's 4 parts type~ip~pod.namespace~domain", c.Node.ID))
	}
	if _, err := structpb.NewStruct(c.Node.Metadata); err != nil {
		errs = append(errs, fmt.Errorf("node metadata is not JSON-compatible: %w", err))
	}
	if c.TLS != nil && c.TLS.ServerName == "" {
		errs = append(errs, errors.New("TLS without a server name; set SHOAL_XDS_SERVER_NAME (istiod's is istiod.istio-system.svc)"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registry-istio: bad bootstrap: %w", err)
	}
	return nil
}

// NodeProto returns the node as the Envoy proto sent in DiscoveryRequests.
func (c *Config) NodeProto() (*corev3.Node, error) {
	md, err := structpb.NewStruct(c.Node.Metadata)
	if err != nil {
		return nil, fmt.Errorf("registry-istio: node metadata: %w", err)
	}
	n := &corev3.Node{
		Id:                   c.Node.ID,
		Cluster:              c.Node.Cluster,
		Metadata:             md,
		UserAgentName:        "shoal",
		UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: "registry-istio"},
		ClientFeatures:       []string{"envoy.lb.does_not_support_overprovisioning"},
	}
	if l := c.Node.Locality; l != (Locality{}) {
		n.Locality = &corev3.Locality{Region: l.Region, Zone: l.Zone, SubZone: l.SubZone}
	}
	return n, nil
}

// Identity is what istiod needs to know about a proxyless workload.
type Identity struct {
	PodName   string
	Namespace string
	// IPs are the workload's addresses, the first being its primary one.
	IPs    []string
	Labels map[string]string
	// ClusterID is the Istio cluster name (istiod's default: Kubernetes).
	ClusterID string
	// Domain is the cluster DNS domain (default cluster.local).
	Domain         string
	ServiceAccount string
	Locality       Locality
	// AutoRegisterGroup names a WorkloadGroup in Namespace: istiod then
	// creates a WorkloadEntry for this process while it is connected (over
	// TLS, with a token: istiod requires a verified identity) and deletes it
	// after it disconnects. Also ISTIO_META_AUTO_REGISTER_GROUP.
	AutoRegisterGroup string
	// Metadata holds extra node metadata (ISTIO_META_* keys without the
	// prefix); it cannot override the fields above. PROXY_CONFIG defaults
	// to an empty object so that istiod's syncz lists the client.
	Metadata map[string]any
}

// Node builds the node identity istiod expects from a proxyless client.
func (id Identity) Node() Node {
	domain := id.Domain
	if domain == "" {
		domain = "cluster.local"
	}
	cluster := id.ClusterID
	if cluster == "" {
		cluster = "Kubernetes"
	}
	ip := ""
	if len(id.IPs) > 0 {
		ip = id.IPs[0]
	}
	md := maps.Clone(id.Metadata)
	if md == nil {
		md = map[string]any{}
	}
	// istiod's syncz (what istioctl proxy-status reads over xDS) lists only
	// nodes that carry PROXY_CONFIG. An empty one is read by istiod only
	// where Envoy-facing code takes it instead of the mesh's defaultConfig
	// (SDS private key provider, Envoy listener and cluster builders), none
	// of which the grpc generator a Shoal client uses reaches.
	if _, ok := md["PROXY_CONFIG"]; !ok {
		md["PROXY_CONFIG"] = map[string]any{}
	}
	md["GENERATOR"] = GeneratorGRPC
	md["NAMESPACE"] = id.Namespace
	md["NAME"] = id.PodName
	md["CLUSTER_ID"] = cluster
	md["INSTANCE_IPS"] = strings.Join(id.IPs, ",")
	if id.ServiceAccount != "" {
		md["SERVICE_ACCOUNT"] = id.ServiceAccount
	}
	if id.AutoRegisterGroup != "" {
		md["AUTO_REGISTER_GROUP"] = id.AutoRegisterGroup
	}
	if len(id.Labels) > 0 {
		labels := make(map[string]any, len(id.Labels))
		for k, v := range id.Labels {
			labels[k] = v
		}
		md["LABELS"] = labels
	}
	return Node{
		ID:       fmt.Sprintf("sidecar~%s~%s.%s~%s.svc.%s", ip, id.PodName, id.Namespace, id.Namespace, domain),
		Locality: id.Locality,
		Metadata: md,
	}
}
