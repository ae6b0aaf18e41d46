package identity

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
)

// MaxFileRefresh bounds how long a FromFiles Source goes without reading
// its files again: a rotation istio-agent writes is in use within it,
// whatever the bootstrap's (much longer) refresh_interval says.
const MaxFileRefresh = 10 * time.Second

// fileState is what a FromFiles Source reads and last loaded; only the
// watching goroutine (and FromFiles before it starts) touches last.
type fileState struct {
	fw    bootstrap.FileWatcher
	every time.Duration
	last  [3][]byte // certificate, key, root as last loaded
	bad   [3][]byte // contents that last failed to load, logged once
}

// FromBootstrap returns a Source serving the certificates of cfg's
// "default" file_watcher certificate provider: what istio-agent writes for
// proxyless gRPC (inject.istio.io/templates: grpc-agent). Use it instead of
// New when the pod has istio-agent.
func FromBootstrap(cfg *bootstrap.Config, opts ...Option) (*Source, error) {
	p, ok := cfg.CertificateProviders[bootstrap.DefaultCertificateProvider]
	switch {
	case !ok:
		return nil, errors.New(`identity: the gRPC bootstrap has no certificate provider "default"; istio-agent writes one (file_watcher) when the pod uses inject.istio.io/templates: grpc-agent; without istio-agent use identity.New`)
	case p.FileWatcher == nil:
		return nil, fmt.Errorf("identity: certificate provider \"default\" is plugin %q; Shoal reads only %s", p.Plugin, bootstrap.FileWatcherPlugin)
	}
	return FromFiles(*p.FileWatcher, opts...)
}

// FromFiles returns a Source serving the certificate chain, private key
// and mesh root in fw's files, read again every fw.RefreshInterval (at
// most MaxFileRefresh) and swapped in when they change. Files caught
// mid-rotation (a key that does not match the certificate, a chain that
// does not verify against the root) are logged once and skipped: the
// current certificate keeps serving until a consistent set appears. Of
// the options, WithLogger and WithOnUpdate apply. It fails when the files
// cannot be read or do not make a valid, unexpired mesh identity.
func FromFiles(fw bootstrap.FileWatcher, opts ...Option) (*Source, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	every := fw.RefreshInterval
	if every <= 0 || every > MaxFileRefresh {
		every = MaxFileRefresh
	}
	s := &Source{cfg: cfg, addr: "files " + fw.CertificateFile, files: &fileState{fw: fw, every: every}, done: make(chan struct{})}
	raw, err := s.files.read()
	if err != nil {
		return nil, err
	}
	got, roots, err := s.files.load(raw)
	if err != nil {
		return nil, err
	}
	s.useFiles(raw, got, roots, "identity: workload certificate loaded")
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.watchFiles(ctx)
	return s, nil
}

// watchFiles reloads the files when they change, until ctx ends.
func (s *Source) watchFiles(ctx context.Context) {
	defer close(s.done)
	f := s.files
	t := time.NewTicker(f.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		raw, err := f.read()
		if err == nil && same(raw, f.last) {
			continue
		}
		var got *issued
		var roots *x509.CertPool
		if err == nil {
			got, roots, err = f.load(raw)
		}
		if err != nil {
			if !same(raw, f.bad) {
				f.bad = raw
				s.cfg.logger.Warn("identity: the certificate files changed but do not load; serving the current certificate", "id", s.ID().String(), "expires", s.Leaf().NotAfter, "error", err)
			}
			continue
		}
		s.useFiles(raw, got, roots, "identity: workload certificate reloaded")
	}
}

// useFiles puts what raw loaded into use, logs msg and tells WithOnUpdate.
func (s *Source) useFiles(raw [3][]byte, got *issued, roots *x509.CertPool, msg string) {
	s.files.last = raw
	s.roots.Store(roots)
	s.cur.Store(got)
	s.cfg.logger.Info(msg, "id", got.id.String(), "expires", got.leaf.NotAfter, "file", s.files.fw.CertificateFile)
	if s.cfg.onUpdate != nil {
		s.cfg.onUpdate(got.cert)
	}
}

// read returns the three files' contents.
func (f *fileState) read() ([3][]byte, error) {
	var raw [3][]byte
	for i, name := range []string{f.fw.CertificateFile, f.fw.PrivateKeyFile, f.fw.CACertificateFile} {
		b, err := os.ReadFile(name) //nolint:gosec // the bootstrap names the files
		if err != nil {
			return raw, fmt.Errorf("identity: read the certificate provider's file: %w; check the bootstrap's file_watcher config and that istio-agent runs", err)
		}
		raw[i] = b
	}
	return raw, nil
}

// load checks raw (certificate chain, key, root) as one identity.
func (f *fileState) load(raw [3][]byte) (*issued, *x509.CertPool, error) {
	pair, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return nil, nil, fmt.Errorf("identity: %s and %s do not make a certificate and its key: %w", f.fw.CertificateFile, f.fw.PrivateKeyFile, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(raw[2]) {
		return nil, nil, fmt.Errorf("identity: %s holds no PEM certificate", f.fw.CACertificateFile)
	}
	chain := [][]byte{pair.Certificate[0]}
	for _, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("identity: a chain certificate in %s does not parse: %w", f.fw.CertificateFile, err)
		}
		if !selfSigned(c) {
			chain = append(chain, der) // peers have the root
		}
	}
	id, err := VerifyPeer(chain, roots, time.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("identity: the certificate in %s does not verify against the root in %s: %w", f.fw.CertificateFile, f.fw.CACertificateFile, err)
	}
	pair.Certificate = chain
	return &issued{cert: &pair, leaf: pair.Leaf, id: id}, roots, nil
}

func (f *fileState) expired(c *issued) error {
	return fmt.Errorf("identity: the certificate of %s in %s expired at %s and no newer one was written; check istio-agent",
		c.id, f.fw.CertificateFile, c.leaf.NotAfter.Format(time.RFC3339))
}

// selfSigned reports whether c is a root: chains sent to peers leave it
// out, since they verify against their own copy.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

func same(a, b [3][]byte) bool {
	return bytes.Equal(a[0], b[0]) && bytes.Equal(a[1], b[1]) && bytes.Equal(a[2], b[2])
}
