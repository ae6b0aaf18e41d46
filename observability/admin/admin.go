package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddress is where the endpoint listens unless WithAddress says
// otherwise: loopback, on the port Envoy's admin interface uses in an
// Istio pod (a proxyless pod has no Envoy to take it).
const DefaultAddress = "127.0.0.1:15000"

// Option configures a Server.
type Option interface{ apply(*config) }

type config struct {
	address  string
	gatherer prometheus.Gatherer
	checks   []Check
	grpc     http.Handler
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Check is a readiness check: nil when ready, else why not.
type Check func(ctx context.Context) error

// WithAddress sets the listen address, host:port (port 0 picks one).
func WithAddress(addr string) Option { return optionFunc(func(c *config) { c.address = addr }) }

// WithGatherer sets what /metrics exposes (default: no /metrics).
func WithGatherer(g prometheus.Gatherer) Option {
	return optionFunc(func(c *config) { c.gatherer = g })
}

// WithReadiness adds readiness checks; /readyz answers 200 only when the
// server is marked ready (SetReady) and every check passes.
func WithReadiness(checks ...Check) Option {
	return optionFunc(func(c *config) { c.checks = append(c.checks, checks...) })
}

// WithGRPC serves gRPC on the same port: requests with a gRPC content
// type over cleartext HTTP/2 go to h, a *grpc.Server (its ServeHTTP), so
// that a CSDS service registered on it (registry-istio/csds) answers
// `grpcdebug <admin address> xds status`. Everything else still goes to
// the admin pages over HTTP/1.1 or HTTP/2.
func WithGRPC(h http.Handler) Option { return optionFunc(func(c *config) { c.grpc = h }) }

// Server is the admin endpoint.
type Server struct {
	cfg   config
	mux   *http.ServeMux
	srv   *http.Server
	ready atomic.Bool

	mu    sync.Mutex
	paths []string
	ln    net.Listener
	done  chan struct{}
}

// New builds the endpoint; Start listens.
func New(opts ...Option) (*Server, error) {
	cfg := config{address: DefaultAddress}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if _, _, err := net.SplitHostPort(cfg.address); err != nil {
		return nil, fmt.Errorf("admin: address %q: %w; use host:port such as 127.0.0.1:15000", cfg.address, err)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	if cfg.grpc != nil {
		s.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				cfg.grpc.ServeHTTP(w, r)
				return
			}
			s.mux.ServeHTTP(w, r)
		})
		s.srv.Protocols = new(http.Protocols)
		s.srv.Protocols.SetHTTP1(true)
		s.srv.Protocols.SetUnencryptedHTTP2(true)
	}
	s.handle("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }))
	s.handle("/readyz", http.HandlerFunc(s.readyz))
	if cfg.gatherer != nil {
		s.handle("/metrics", promhttp.HandlerFor(cfg.gatherer, promhttp.HandlerOpts{}))
	}
	s.handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
	s.handle("/debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	s.handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	s.handle("/debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	s.handle("/debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	s.mux.HandleFunc("/{$}", s.index)
	return s, nil
}

func (s *Server) handle(path string, h http.Handler) {
	s.mux.Handle(path, h)
	s.paths = append(s.paths, path)
}

// HandleJSON serves view's answer as JSON at path (e.g. "/debug/xds").
// The view reads the request's query parameters with [Query]. It fails
// on a path already served or not starting with "/debug/".
func (s *Server) HandleJSON(path string, view func(ctx context.Context) (any, error)) error {
	if !strings.HasPrefix(path, "/debug/") || strings.HasPrefix(path, "/debug/pprof") || len(path) <= len("/debug/") {
		return fmt.Errorf("admin: JSON view path %q: use /debug/<name>, outside /debug/pprof", path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.paths, path) {
		return fmt.Errorf("admin: %s is already served; give the view another path", path)
	}
	s.handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := view(context.WithValue(r.Context(), queryKey{}, r.URL.Query()))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}))
	return nil
}

type queryKey struct{}

// Query returns the query parameters of the request a JSON view answers
// (see HandleJSON), or nil outside one.
func Query(ctx context.Context) url.Values {
	q, _ := ctx.Value(queryKey{}).(url.Values)
	return q
}

// SetReady marks the application ready (or not) for /readyz.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var reasons []string
	if !s.ready.Load() {
		reasons = append(reasons, "not started")
	}
	for _, c := range s.cfg.checks {
		if err := c(r.Context()); err != nil {
			reasons = append(reasons, err.Error())
		}
	}
	if len(reasons) > 0 {
		http.Error(w, "not ready: "+strings.Join(reasons, "; "), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	paths := slices.Sorted(slices.Values(s.paths))
	s.mu.Unlock()
	_, _ = w.Write([]byte(strings.Join(paths, "\n") + "\n"))
}

// Start listens and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("admin: already started")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.address)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w; pick a free port with WithAddress", s.cfg.address, err)
	}
	s.ln, s.done = ln, make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // returns http.ErrServerClosed on Stop
	}()
	return nil
}

// Addr is the address the server listens on, nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Stop shuts the server down, waiting for requests in flight within ctx.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	<-done
	return err
}
