package xdsclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
)

// transportOptions returns the dial options for plaintext or TLS (with an
// optional service account token) to istiod.
func transportOptions(cfg *bootstrap.Config) ([]grpc.DialOption, error) {
	if cfg.TLS == nil {
		return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, nil
	}
	tc := &tls.Config{ServerName: cfg.TLS.ServerName, MinVersion: tls.VersionTLS12}
	if f := cfg.TLS.RootCertFile; f != "" {
		pem, err := os.ReadFile(f) //nolint:gosec // the operator names the file
		if err != nil {
			return nil, fmt.Errorf("registry-istio: read istiod root certificate: %w; set %s", err, bootstrap.EnvRootCert)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("registry-istio: istiod root certificate %s holds no PEM certificate; set %s to istiod's CA", f, bootstrap.EnvRootCert)
		}
		tc.RootCAs = pool
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tc))}
	if cfg.TLS.TokenFile != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenFile(cfg.TLS.TokenFile)))
	}
	return opts, nil
}

// tokenFile sends the JWT in a file as a bearer token, reading the file on
// every stream since Kubernetes rotates projected tokens.
type tokenFile string

func (f tokenFile) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, fmt.Errorf("registry-istio: read service account token: %w; set %s", err, bootstrap.EnvToken)
	}
	return map[string]string{"authorization": "Bearer " + strings.TrimSpace(string(b))}, nil
}

func (tokenFile) RequireTransportSecurity() bool { return true }
