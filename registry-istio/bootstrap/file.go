package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
)

// grpcBootstrap is the subset of gRPC's xDS bootstrap file (gRFC A27) that
// Shoal reads.
type grpcBootstrap struct {
	XDSServers []struct {
		ServerURI    string `json:"server_uri"`
		ChannelCreds []struct {
			Type   string          `json:"type"`
			Config json.RawMessage `json:"config"`
		} `json:"channel_creds"`
		ServerFeatures []string `json:"server_features"`
	} `json:"xds_servers"`
	Node *struct {
		ID       string         `json:"id"`
		Cluster  string         `json:"cluster"`
		Metadata map[string]any `json:"metadata"`
		Locality *struct {
			Region  string `json:"region"`
			Zone    string `json:"zone"`
			SubZone string `json:"sub_zone"`
		} `json:"locality"`
	} `json:"node"`
	CertificateProviders map[string]certificateProviderJSON `json:"certificate_providers"`
}

type tlsCredsConfig struct {
	CACertificateFile string `json:"ca_certificate_file"`
}

// FromFile reads a gRPC xDS bootstrap file (the file GRPC_XDS_BOOTSTRAP names,
// as istio-agent writes it for proxyless gRPC).
func FromFile(path string) (*Config, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the operator names the file
	if err != nil {
		return nil, fmt.Errorf("registry-istio: read gRPC xDS bootstrap: %w; fix %s", err, EnvGRPCFile)
	}
	return FromJSON(b, path)
}

// FromJSON parses a gRPC xDS bootstrap; source names it in errors. The first
// server is used, with its first supported channel credential ("insecure" or
// "tls"). GENERATOR=grpc is added to the node metadata when missing, since
// Shoal needs istiod's proxyless generator.
func FromJSON(b []byte, source string) (*Config, error) {
	var gb grpcBootstrap
	if err := json.Unmarshal(b, &gb); err != nil {
		return nil, fmt.Errorf("registry-istio: gRPC xDS bootstrap %s is not valid JSON: %w", source, err)
	}
	if len(gb.XDSServers) == 0 {
		return nil, fmt.Errorf("registry-istio: gRPC xDS bootstrap %s has no xds_servers; add istiod's address", source)
	}
	srv := gb.XDSServers[0]
	cfg := &Config{ServerURI: srv.ServerURI, ServerFeatures: srv.ServerFeatures}
	var kinds []string
	found := false
	for _, cc := range srv.ChannelCreds {
		kinds = append(kinds, cc.Type)
		switch cc.Type {
		case "insecure":
			found = true
		case "tls":
			var tc tlsCredsConfig
			if len(cc.Config) > 0 {
				if err := json.Unmarshal(cc.Config, &tc); err != nil {
					return nil, fmt.Errorf("registry-istio: gRPC xDS bootstrap %s: tls channel_creds config: %w", source, err)
				}
			}
			cfg.TLS = &TLS{RootCertFile: tc.CACertificateFile, ServerName: DefaultServerName}
			found = true
		}
		if found {
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("registry-istio: gRPC xDS bootstrap %s: channel_creds %q has no supported type; use \"insecure\" or \"tls\"", source, kinds)
	}
	if gb.Node == nil {
		return nil, errors.New("registry-istio: gRPC xDS bootstrap " + source + " has no node; istiod needs the node id")
	}
	cfg.Node = Node{ID: gb.Node.ID, Cluster: gb.Node.Cluster, Metadata: maps.Clone(gb.Node.Metadata)}
	if cfg.Node.Metadata == nil {
		cfg.Node.Metadata = map[string]any{}
	}
	if _, ok := cfg.Node.Metadata["GENERATOR"]; !ok {
		cfg.Node.Metadata["GENERATOR"] = GeneratorGRPC
	}
	if l := gb.Node.Locality; l != nil {
		cfg.Node.Locality = Locality{Region: l.Region, Zone: l.Zone, SubZone: l.SubZone}
	}
	cps, err := certificateProviders(gb.CertificateProviders)
	if err != nil {
		return nil, fmt.Errorf("registry-istio: gRPC xDS bootstrap %s: %w", source, err)
	}
	cfg.CertificateProviders = cps
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, source)
	}
	return cfg, nil
}
