package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	securityv1alpha1 "istio.io/api/security/v1alpha1"
)

// requestTimeout bounds one CreateCertificate call.
const requestTimeout = 10 * time.Second

// maxBackoffStep caps the retry count given to the backoff (its interval
// has long reached Max by then).
const maxBackoffStep = 32

// Source is a workload identity from istiod's CA: the current certificate
// and the mesh's root, renewed in the background until Close.
type Source struct {
	cfg    config
	addr   string
	roots  atomic.Pointer[x509.CertPool]
	conn   *grpc.ClientConn // nil for files (FromFiles)
	client securityv1alpha1.IstioCertificateServiceClient
	files  *fileState // set by FromFiles instead of istiod

	cur atomic.Pointer[issued]

	cancel context.CancelFunc
	done   chan struct{}
	close  sync.Once
}

// issued is one certificate from istiod.
type issued struct {
	cert *tls.Certificate // chain without the root, and the private key
	leaf *x509.Certificate
	id   ID
}

// New asks istiod's CA at addr (its TLS port, host:port) for this
// workload's certificate and returns a Source serving it, renewed in the
// background until Close. It retries while istiod is unreachable, until
// ctx ends; a token or request that istiod rejects fails at once, with an
// error naming the token file and istiod's reason.
func New(ctx context.Context, addr string, opts ...Option) (*Source, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	roots, err := loadRoots(cfg)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{ServerName: cfg.serverName, RootCAs: roots, MinVersion: tls.VersionTLS12}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		return nil, fmt.Errorf("identity: istiod address %q: %w; give istiod's TLS port, for example istiod.istio-system.svc:15012", addr, err)
	}
	s := &Source{
		cfg:    cfg,
		addr:   addr,
		conn:   conn,
		client: securityv1alpha1.NewIstioCertificateServiceClient(conn),
		done:   make(chan struct{}),
	}
	s.roots.Store(roots)
	first, err := s.fetchRetrying(ctx, true)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	s.cur.Store(first)
	cfg.logger.Info("identity: workload certificate issued", "id", first.id.String(), "expires", first.leaf.NotAfter, "istiod", addr)
	if cfg.onUpdate != nil {
		cfg.onUpdate(first.cert)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(runCtx)
	return s, nil
}

// loadRoots reads the mesh's root certificate(s).
func loadRoots(cfg config) (*x509.CertPool, error) {
	data, from := cfg.rootPEM, "WithRootPEM"
	if data == nil {
		b, err := os.ReadFile(cfg.rootFile)
		if err != nil {
			return nil, fmt.Errorf("identity: read the mesh root certificate: %w; mount the istio-ca-root-cert ConfigMap there or give WithRootCertFile", err)
		}
		data, from = b, cfg.rootFile
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("identity: %s holds no PEM certificate; give the root-cert.pem of the istio-ca-root-cert ConfigMap", from)
	}
	return pool, nil
}

// Close stops renewing and closes the connection to istiod. The last
// certificate stays available until it expires.
func (s *Source) Close() error {
	var err error
	s.close.Do(func() {
		s.cancel()
		<-s.done
		if s.conn != nil {
			err = s.conn.Close()
		}
	})
	return err
}

// ID is the workload's SPIFFE identity, as istiod issued it.
func (s *Source) ID() ID { return s.cur.Load().id }

// Roots is the mesh's root of trust.
func (s *Source) Roots() *x509.CertPool { return s.roots.Load() }

// Leaf is the current certificate, parsed.
func (s *Source) Leaf() *x509.Certificate { return s.cur.Load().leaf }

// Certificate returns the current certificate, or an error once it has
// expired without istiod renewing it.
func (s *Source) Certificate() (*tls.Certificate, error) {
	c := s.cur.Load()
	if now := time.Now(); now.After(c.leaf.NotAfter) {
		if s.files != nil {
			return nil, s.files.expired(c)
		}
		return nil, fmt.Errorf("identity: the certificate of %s expired at %s and istiod at %s has not renewed it; check that istiod is reachable and accepts the token in %s",
			c.id, c.leaf.NotAfter.Format(time.RFC3339), s.addr, s.cfg.tokenFile)
	}
	return c.cert, nil
}

// GetCertificate is for tls.Config.GetCertificate (a server).
func (s *Source) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.Certificate()
}

// GetClientCertificate is for tls.Config.GetClientCertificate (a client).
func (s *Source) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return s.Certificate()
}

// VerifyPeer verifies a peer's chain against the mesh's root now and
// returns its SPIFFE ID (see the package function VerifyPeer).
func (s *Source) VerifyPeer(rawCerts [][]byte) (ID, error) {
	return VerifyPeer(rawCerts, s.Roots(), time.Now())
}

// run renews the certificate until ctx ends.
func (s *Source) run(ctx context.Context) {
	defer close(s.done)
	for {
		cur := s.cur.Load()
		wait := renewDelay(time.Now(), cur.leaf.NotAfter, mrand.Uint64N)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		next, err := s.fetchRetrying(ctx, false)
		if err != nil {
			return // ctx ended
		}
		s.cur.Store(next)
		s.cfg.logger.Info("identity: workload certificate renewed", "id", next.id.String(), "expires", next.leaf.NotAfter)
		if s.cfg.onUpdate != nil {
			s.cfg.onUpdate(next.cert)
		}
	}
}

// renewDelay is how long to wait, at now, before renewing a certificate
// that expires at notAfter: half its remaining life, less a jitter of up to
// a tenth of it, so that replicas started together spread their requests.
func renewDelay(now, notAfter time.Time, below func(uint64) uint64) time.Duration {
	remaining := notAfter.Sub(now)
	if remaining <= 0 {
		return 0
	}
	half := remaining / 2
	if tenth := uint64(remaining / 10); tenth > 0 {
		half -= time.Duration(below(tenth))
	}
	return half
}

// fetchRetrying asks istiod for a certificate until it gets one or ctx
// ends, waiting per s.cfg.backoff between failures. At startup an answer
// other than "unavailable" ends it with that error; later every failure is
// retried, and the current certificate keeps serving until it expires.
func (s *Source) fetchRetrying(ctx context.Context, startup bool) (*issued, error) {
	expiredLogged := false
	var last error // the last answer before ctx ended, for the final error
	for n := uint32(0); ; n++ {
		got, err := s.fetch(ctx)
		if err == nil {
			return got, nil
		}
		if ctx.Err() != nil {
			if last == nil {
				last = err
			}
			return nil, fmt.Errorf("identity: no certificate from istiod at %s: %w", s.addr, errors.Join(last, ctx.Err()))
		}
		last = err
		if startup && !retryable(err) {
			return nil, err
		}
		if startup {
			s.cfg.logger.Warn("identity: istiod's CA did not answer; retrying", "istiod", s.addr, "attempt", n+1, "error", err)
		} else if cur := s.cur.Load(); time.Now().After(cur.leaf.NotAfter) {
			if !expiredLogged {
				s.cfg.logger.Error("identity: the workload certificate expired and istiod has not renewed it; TLS handshakes fail until it does",
					"id", cur.id.String(), "expired", cur.leaf.NotAfter, "istiod", s.addr, "error", err)
				expiredLogged = true
			}
		} else {
			s.cfg.logger.Warn("identity: renewal failed; serving the current certificate until it expires",
				"id", cur.id.String(), "expires", cur.leaf.NotAfter, "istiod", s.addr, "attempt", n+1, "error", err)
		}
		t := time.NewTimer(s.cfg.backoff.Delay(min(n, maxBackoffStep), mrand.Uint64N))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("identity: no certificate from istiod at %s: %w", s.addr, errors.Join(err, ctx.Err()))
		case <-t.C:
		}
	}
}

// retryable reports whether err means istiod is away rather than refusing.
func retryable(err error) bool {
	var ce *caError
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Canceled:
		return true
	}
	return false
}

// caError is an error answer of istiod's CA.
type caError struct {
	code codes.Code
	msg  string
}

func (e *caError) Error() string { return e.msg }

// fetch makes one CreateCertificate request with a new key.
func (s *Source) fetch(ctx context.Context) (*issued, error) {
	token, err := os.ReadFile(s.cfg.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("identity: read the service-account token: %w; mount a projected token with audience %s there or give WithTokenFile", err, TokenAudience)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate a P-256 key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, fmt.Errorf("identity: create a certificate request: %w", err)
	}
	md := metadata.Pairs("authorization", "Bearer "+strings.TrimSpace(string(token)))
	if s.cfg.clusterID != "" {
		md.Set("ClusterID", s.cfg.clusterID)
	}
	rctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, md), requestTimeout)
	defer cancel()
	resp, err := s.client.CreateCertificate(rctx, &securityv1alpha1.IstioCertificateRequest{
		Csr:              string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})),
		ValidityDuration: int64(s.cfg.ttl / time.Second),
	}, grpc.WaitForReady(false))
	if err != nil {
		st := status.Convert(err)
		what := "refused the request"
		if st.Code() == codes.Unauthenticated || st.Code() == codes.PermissionDenied {
			what = fmt.Sprintf("refused the service-account token in %s (check that it is a projected token with audience %s for an existing ServiceAccount)", s.cfg.tokenFile, TokenAudience)
		}
		return nil, &caError{code: st.Code(), msg: fmt.Sprintf("identity: istiod at %s %s: %s: %s", s.addr, what, st.Code(), st.Message())}
	}
	return s.parseChain(resp.GetCertChain(), key)
}

// parseChain turns istiod's PEM chain (leaf first, root last) into a TLS
// certificate for key, checked against the configured root.
func (s *Source) parseChain(pems []string, key *ecdsa.PrivateKey) (*issued, error) {
	var ders [][]byte
	rest := []byte(strings.Join(pems, "\n"))
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 {
		return nil, fmt.Errorf("identity: istiod at %s answered with no certificate", s.addr)
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return nil, fmt.Errorf("identity: istiod at %s answered with a certificate that does not parse: %w", s.addr, err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("identity: istiod at %s answered with a certificate for another key", s.addr)
	}
	// Send the leaf and intermediates, not the self-signed root peers have.
	chain := [][]byte{ders[0]}
	for _, der := range ders[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("identity: istiod at %s answered with a chain certificate that does not parse: %w", s.addr, err)
		}
		if selfSigned(c) {
			continue
		}
		chain = append(chain, der)
	}
	id, err := VerifyPeer(chain, s.Roots(), time.Now())
	if err != nil {
		return nil, fmt.Errorf("identity: istiod at %s issued a certificate that fails against the configured root (is the root from this mesh's istio-ca-root-cert?): %w", s.addr, err)
	}
	return &issued{
		cert: &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf},
		leaf: leaf,
		id:   id,
	}, nil
}
