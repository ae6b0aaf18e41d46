package bootstrap

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
)

// Environment variables read by FromEnv and Load.
const (
	EnvAddress     = "SHOAL_XDS_ADDRESS"
	EnvTLS         = "SHOAL_XDS_TLS"
	EnvRootCert    = "SHOAL_XDS_ROOT_CERT"
	EnvServerName  = "SHOAL_XDS_SERVER_NAME"
	EnvToken       = "SHOAL_XDS_TOKEN" //nolint:gosec // the name of a variable holding a file path
	EnvDomain      = "SHOAL_CLUSTER_DOMAIN"
	EnvGRPCFile    = "GRPC_XDS_BOOTSTRAP"
	EnvGRPCConfig  = "GRPC_XDS_BOOTSTRAP_CONFIG"
	metaPrefix     = "ISTIO_META_"
	metaJSONPrefix = "ISTIO_METAJSON_"
)

// Load returns the bootstrap for this process: the gRPC xDS bootstrap named
// by GRPC_XDS_BOOTSTRAP (or inline in GRPC_XDS_BOOTSTRAP_CONFIG) when set and
// SHOAL_XDS_ADDRESS is not, otherwise FromEnv(os.Environ()).
func Load() (*Config, error) {
	if os.Getenv(EnvAddress) == "" {
		if path := os.Getenv(EnvGRPCFile); path != "" {
			return FromFile(path)
		}
		if inline := os.Getenv(EnvGRPCConfig); inline != "" {
			return FromJSON([]byte(inline), EnvGRPCConfig)
		}
	}
	return FromEnv(os.Environ())
}

// FromEnv builds a Config from environment variables given as KEY=VALUE
// (as os.Environ returns them):
//
//   - SHOAL_XDS_ADDRESS: istiod's host:port. Default
//     istiod.istio-system.svc:15012 when istiod's root certificate is mounted,
//     else istiod.istio-system.svc:15010.
//   - SHOAL_XDS_TLS: "true" or "false"; default true when the port is 15012.
//   - SHOAL_XDS_ROOT_CERT: istiod's root CA (default
//     /var/run/secrets/istio/root-cert.pem).
//   - SHOAL_XDS_SERVER_NAME: name in istiod's certificate (default
//     istiod.istio-system.svc).
//   - SHOAL_XDS_TOKEN: JWT file sent to istiod over TLS (default the istio-token
//     projection, then the service account token, when present).
//   - POD_NAME (default the host name), POD_NAMESPACE (default "default"),
//     INSTANCE_IP (comma-separated; default this host's first non-loopback
//     address), SERVICE_ACCOUNT, SHOAL_CLUSTER_DOMAIN (default cluster.local).
//   - ISTIO_META_<KEY>: node metadata KEY as a string;
//     ISTIO_METAJSON_<KEY>: node metadata KEY parsed as JSON (for example
//     ISTIO_METAJSON_LABELS='{"app":"greeter"}'). ISTIO_META_CLUSTER_ID sets
//     the cluster ID (default Kubernetes).
func FromEnv(environ []string) (*Config, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	id := Identity{
		PodName:        getenv("POD_NAME"),
		Namespace:      getenv("POD_NAMESPACE"),
		ServiceAccount: getenv("SERVICE_ACCOUNT"),
		Domain:         getenv(EnvDomain),
		ClusterID:      getenv(metaPrefix + "CLUSTER_ID"),
		Metadata:       map[string]any{},
	}
	if id.PodName == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("registry-istio: no POD_NAME and no host name (%w); set POD_NAME", err)
		}
		id.PodName = h
	}
	if id.Namespace == "" {
		id.Namespace = "default"
	}
	for _, ip := range strings.Split(getenv("INSTANCE_IP"), ",") {
		if ip = strings.TrimSpace(ip); ip == "" {
			continue
		}
		if net.ParseIP(ip) == nil {
			return nil, fmt.Errorf("registry-istio: INSTANCE_IP %q is not an IP address; set it to the pod IP (status.podIP)", ip)
		}
		id.IPs = append(id.IPs, ip)
	}
	if len(id.IPs) == 0 {
		id.IPs = []string{hostIP()}
	}
	if err := readMeta(env, &id); err != nil {
		return nil, err
	}
	cfg := &Config{Node: id.Node()}
	if err := transportFromEnv(getenv, cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func readMeta(env map[string]string, id *Identity) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		switch {
		case strings.HasPrefix(k, metaJSONPrefix):
			var parsed any
			if err := json.Unmarshal([]byte(v), &parsed); err != nil {
				return fmt.Errorf("registry-istio: %s is not valid JSON (%w); fix or unset it", k, err)
			}
			key := strings.TrimPrefix(k, metaJSONPrefix)
			if key == "LABELS" {
				labels, ok := parsed.(map[string]any)
				if !ok {
					return fmt.Errorf("registry-istio: %s must be a JSON object of strings", k)
				}
				id.Labels = map[string]string{}
				for lk, lv := range labels {
					s, ok := lv.(string)
					if !ok {
						return fmt.Errorf("registry-istio: %s: label %q is not a string", k, lk)
					}
					id.Labels[lk] = s
				}
				continue
			}
			id.Metadata[key] = parsed
		case strings.HasPrefix(k, metaPrefix) && v != "":
			key := strings.TrimPrefix(k, metaPrefix)
			if key == "CLUSTER_ID" {
				continue
			}
			id.Metadata[key] = v
		}
	}
	return nil
}

func transportFromEnv(getenv func(string) string, cfg *Config) error {
	rootCert := getenv(EnvRootCert)
	if rootCert == "" && fileExists(DefaultRootCertFile) {
		rootCert = DefaultRootCertFile
	}
	cfg.ServerURI = getenv(EnvAddress)
	if cfg.ServerURI == "" {
		port := PlaintextPort
		if rootCert != "" {
			port = TLSPort
		}
		cfg.ServerURI = net.JoinHostPort(DefaultServerName, port)
	}
	_, port, err := net.SplitHostPort(cfg.ServerURI)
	if err != nil {
		return fmt.Errorf("registry-istio: %s=%q is not host:port (%w); use for example istiod.istio-system.svc:15012", EnvAddress, cfg.ServerURI, err)
	}
	useTLS := port == TLSPort
	switch v := strings.ToLower(getenv(EnvTLS)); v {
	case "":
	case "true", "1", "yes":
		useTLS = true
	case "false", "0", "no":
		useTLS = false
	default:
		return fmt.Errorf("registry-istio: %s=%q; use true or false", EnvTLS, v)
	}
	if !useTLS {
		return nil
	}
	if rootCert != "" && !fileExists(rootCert) {
		return fmt.Errorf("registry-istio: istiod root certificate %s does not exist; set %s to the PEM of istiod's CA", rootCert, EnvRootCert)
	}
	t := &TLS{RootCertFile: rootCert, ServerName: getenv(EnvServerName), TokenFile: getenv(EnvToken)}
	if t.ServerName == "" {
		t.ServerName = DefaultServerName
	}
	if t.TokenFile == "" {
		for _, f := range []string{DefaultTokenFile, ServiceAccountTokenFile} {
			if fileExists(f) {
				t.TokenFile = f
				break
			}
		}
	} else if !fileExists(t.TokenFile) {
		return fmt.Errorf("registry-istio: token file %s does not exist; fix %s", t.TokenFile, EnvToken)
	}
	cfg.TLS = t
	return nil
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// hostIP returns the first non-loopback unicast address, preferring IPv4.
func hostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "127.0.0.1"
	}
	var v6 string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || !n.IP.IsGlobalUnicast() {
			continue
		}
		if n.IP.To4() != nil {
			return n.IP.String()
		}
		if v6 == "" {
			v6 = n.IP.String()
		}
	}
	if v6 != "" {
		return v6
	}
	return "127.0.0.1"
}
