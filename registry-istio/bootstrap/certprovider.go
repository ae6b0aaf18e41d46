package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// FileWatcherPlugin is the certificate provider plugin that reads a
// certificate, its key and the root from files, re-reading them as they
// change (istio-agent writes them for proxyless gRPC).
const FileWatcherPlugin = "file_watcher"

// DefaultCertificateProvider is the instance name istiod's
// UpstreamTlsContext and DownstreamTlsContext refer to ("default" for the
// workload certificate; certificate name "ROOTCA" of it for the root).
const DefaultCertificateProvider = "default"

// CertificateProvider is one entry of a gRPC bootstrap's
// certificate_providers (gRFC A29).
type CertificateProvider struct {
	// Plugin is the plugin_name, for example FileWatcherPlugin.
	Plugin string
	// FileWatcher is set when Plugin is FileWatcherPlugin.
	FileWatcher *FileWatcher
}

// FileWatcher is the config of a file_watcher certificate provider.
type FileWatcher struct {
	CertificateFile   string
	PrivateKeyFile    string
	CACertificateFile string
	// RefreshInterval is how often the files are read again (0: unset;
	// istio-agent writes 900s, grpc-go defaults to 600s).
	RefreshInterval time.Duration
}

type fileWatcherJSON struct {
	CertificateFile   string `json:"certificate_file"`
	PrivateKeyFile    string `json:"private_key_file"`
	CACertificateFile string `json:"ca_certificate_file"`
	RefreshInterval   string `json:"refresh_interval"`
}

type certificateProviderJSON struct {
	PluginName string          `json:"plugin_name"`
	Config     json.RawMessage `json:"config"`
}

// certificateProviders validates a bootstrap's certificate_providers.
// Plugins other than file_watcher are kept by name (an instance Shoal
// cannot read is an error only where it is used).
func certificateProviders(in map[string]certificateProviderJSON) (map[string]CertificateProvider, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]CertificateProvider, len(in))
	var errs []error
	for name, p := range in {
		cp := CertificateProvider{Plugin: p.PluginName}
		if p.PluginName == FileWatcherPlugin {
			fw, err := fileWatcher(p.Config)
			if err != nil {
				errs = append(errs, fmt.Errorf("certificate_providers[%q]: %w", name, err))
				continue
			}
			cp.FileWatcher = fw
		}
		out[name] = cp
	}
	return out, errors.Join(errs...)
}

func fileWatcher(raw json.RawMessage) (*FileWatcher, error) {
	var c fileWatcherJSON
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("file_watcher config: %w", err)
		}
	}
	fw := &FileWatcher{CertificateFile: c.CertificateFile, PrivateKeyFile: c.PrivateKeyFile, CACertificateFile: c.CACertificateFile}
	var missing []string
	if fw.CertificateFile == "" {
		missing = append(missing, "certificate_file")
	}
	if fw.PrivateKeyFile == "" {
		missing = append(missing, "private_key_file")
	}
	if fw.CACertificateFile == "" {
		missing = append(missing, "ca_certificate_file")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("file_watcher config lacks %s; istio-agent writes cert-chain.pem, key.pem and root-cert.pem", strings.Join(missing, ", "))
	}
	if c.RefreshInterval != "" {
		d, err := time.ParseDuration(c.RefreshInterval)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("file_watcher refresh_interval %q is not a positive duration such as \"900s\"", c.RefreshInterval)
		}
		fw.RefreshInterval = d
	}
	return fw, nil
}
