package impl

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/triple"
)

// EnvCertDir names the directory of the test CA's files that the TLS
// contenders read (WriteTestCerts writes it); server and load processes
// must see the same one.
const EnvCertDir = "SHOALBENCH_CERT_DIR"

// The identities of the benchmark's workloads, as istiod would issue them.
const (
	serverID = "spiffe://cluster.local/ns/bench/sa/server"
	clientID = "spiffe://cluster.local/ns/bench/sa/client"
)

func init() {
	Register(Impl{Name: "shoal-mtls", Serve: serveShoalMTLS, Dial: dialShoalMTLS})
	Register(Impl{Name: "grpc-go-tls", Serve: serveGRPCTLS, Dial: dialGRPCTLS})
}

// WriteTestCerts writes a test mesh into dir, shaped as istiod issues it:
// a self-signed root, and for "server" and "client" a P-256 leaf whose only
// SAN is its SPIFFE ID, in the file layout istio-agent writes
// (<who>/cert-chain.pem, <who>/key.pem, root-cert.pem).
func WriteTestCerts(dir string) error {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"cluster.local"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return err
	}
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	if err := writeFile(filepath.Join(dir, "root-cert.pem"), rootPEM); err != nil {
		return err
	}
	for i, who := range []struct{ name, id string }{{"server", serverID}, {"client", clientID}} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		u, err := url.Parse(who.id)
		if err != nil {
			return err
		}
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), URIs: []*url.URL{u},
			NotBefore: now.Add(-2 * time.Minute), NotAfter: now.Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}, root, &key.PublicKey, rootKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), rootPEM...)
		if err := writeFile(filepath.Join(dir, who.name, "cert-chain.pem"), chain); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, who.name, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// source is who's identity from the test CA's files, through the same
// file_watcher Source a Shoal workload with istio-agent uses.
func source(who string) (*identity.Source, error) {
	dir := os.Getenv(EnvCertDir)
	if dir == "" {
		return nil, fmt.Errorf("impl: %s is not set; WriteTestCerts a directory and name it there", EnvCertDir)
	}
	return identity.FromFiles(bootstrap.FileWatcher{
		CertificateFile:   filepath.Join(dir, who, "cert-chain.pem"),
		PrivateKeyFile:    filepath.Join(dir, who, "key.pem"),
		CACertificateFile: filepath.Join(dir, "root-cert.pem"),
	}, identity.WithLogger(slog.New(slog.DiscardHandler)))
}

// clientTLS is the client configuration a Shoal consumer uses toward a
// cluster under ISTIO_MUTUAL whose service account is the server's.
func clientTLS(src *identity.Source) (*tls.Config, error) {
	return src.ClusterTLS(&mesh.TLS{Mode: mesh.TLSIstioMutual, PeerIDs: []string{serverID}})
}

// serveTLS runs serve on a loopback listener with the server identity's
// mutual TLS configuration (client certificates required and verified
// against the root), until ctx ends.
func serveTLS(ctx context.Context, addr string, ready func(string), serve func(lis net.Listener, cfg *tls.Config, stop <-chan struct{}) error) error {
	src, err := source("server")
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ready(lis.Addr().String())
	return serve(lis, src.ServerTLSConfig(nil), ctx.Done())
}

func serveShoalMTLS(ctx context.Context, addr string, ready func(string)) error {
	return serveTLS(ctx, addr, ready, func(lis net.Listener, cfg *tls.Config, stop <-chan struct{}) error {
		s := triple.NewServer(triple.WithTLS(cfg))
		if err := greettriple.RegisterGreetServiceHandler(s, shoalEcho{}); err != nil {
			return err
		}
		go func() {
			<-stop
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.Shutdown(sctx)
		}()
		return s.Serve(lis)
	})
}

func serveGRPCTLS(ctx context.Context, addr string, ready func(string)) error {
	return serveTLS(ctx, addr, ready, func(lis net.Listener, cfg *tls.Config, stop <-chan struct{}) error {
		s := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
		greet.RegisterGreetServiceServer(s, grpcEcho{})
		go func() {
			<-stop
			s.Stop()
		}()
		err := s.Serve(lis)
		if errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return err
	})
}

// tlsCaller is a Caller holding the client identity it dialled with.
type tlsCaller struct {
	Caller
	src *identity.Source
}

func (c tlsCaller) Close() error {
	err := c.Caller.Close()
	return errors.Join(err, c.src.Close())
}

func dialTLS(dial func(cfg *tls.Config) (Caller, error)) (Caller, error) {
	src, err := source("client")
	if err != nil {
		return nil, err
	}
	cfg, err := clientTLS(src)
	if err == nil {
		var c Caller
		if c, err = dial(cfg); err == nil {
			return tlsCaller{Caller: c, src: src}, nil
		}
	}
	_ = src.Close()
	return nil, err
}

func dialShoalMTLS(target string) (Caller, error) {
	return dialTLS(func(cfg *tls.Config) (Caller, error) {
		cc, err := triple.Dial("tri://"+target, triple.WithTLS(cfg))
		if err != nil {
			return nil, err
		}
		return &shoalCaller{cc: cc, client: greettriple.NewGreetServiceClient(cc)}, nil
	})
}

func dialGRPCTLS(target string) (Caller, error) {
	return dialTLS(func(cfg *tls.Config) (Caller, error) {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return nil, err
		}
		return &grpcCaller{conn: conn, client: greet.NewGreetServiceClient(conn)}, nil
	})
}
