package xdstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// AgentFiles writes what istio-agent gives a proxyless workload into dir:
// a self-signed mesh root (root-cert.pem), a workload certificate for the
// SPIFFE ID spiffeID signed by it (cert-chain.pem, valid for an hour) and
// its P-256 key (key.pem), and a gRPC bootstrap (bootstrap.json) naming
// the plaintext xDS server serverURI, the node nodeID, and those files as
// the "default" file_watcher certificate provider. It returns the
// bootstrap's path (for GRPC_XDS_BOOTSTRAP).
func AgentFiles(tb TB, dir, serverURI, nodeID, spiffeID string) string {
	tb.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("xdstest: root key: %v", err)
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"cluster.local"}},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		tb.Fatalf("xdstest: root certificate: %v", err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		tb.Fatalf("xdstest: root certificate: %v", err)
	}
	u, err := url.Parse(spiffeID)
	if err != nil {
		tb.Fatalf("xdstest: SPIFFE ID %q: %v", spiffeID, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("xdstest: workload key: %v", err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), URIs: []*url.URL{u},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, root, &key.PublicKey, rootKey)
	if err != nil {
		tb.Fatalf("xdstest: workload certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("xdstest: workload key: %v", err)
	}
	files := map[string][]byte{
		"root-cert.pem":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}),
		"cert-chain.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		"key.pem":        pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			tb.Fatalf("xdstest: %v", err)
		}
	}
	b, err := json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{"server_uri": serverURI, "channel_creds": []any{map[string]string{"type": "insecure"}}}},
		"node":        map[string]any{"id": nodeID},
		"certificate_providers": map[string]any{"default": map[string]any{"plugin_name": "file_watcher", "config": map[string]string{
			"certificate_file":    filepath.Join(dir, "cert-chain.pem"),
			"private_key_file":    filepath.Join(dir, "key.pem"),
			"ca_certificate_file": filepath.Join(dir, "root-cert.pem"),
			"refresh_interval":    "900s",
		}}},
	})
	if err != nil {
		tb.Fatalf("xdstest: bootstrap: %v", err)
	}
	path := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatalf("xdstest: %v", err)
	}
	return path
}
