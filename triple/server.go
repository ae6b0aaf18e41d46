package triple

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server serves Triple (gRPC over HTTP/2, h2c or TLS) and HTTP/1.1 JSON
// calls on one port. Register services, then Serve.
type Server struct {
	cfg      serverConfig
	unaryIC  UnaryServerInterceptor
	streamIC StreamServerInterceptor

	mu       sync.RWMutex
	services map[serviceKey]*service
	health   *healthServer

	// Serving: guarded by mu.
	serving bool
	closing bool
	lis     net.Listener
	hs      *http.Server  // HTTP/1 connections, handed over after sniffing
	h1      *connListener // feeds hs
	conns   map[*h2ServerConn]struct{}
	pending map[net.Conn]struct{} // accepted, not yet sniffed
	connWG  sync.WaitGroup
}

// NewServer returns a server with the built-in health and reflection
// services unless turned off.
func NewServer(opts ...ServerOption) *Server {
	s := &Server{
		cfg: newServerConfig(opts), services: map[serviceKey]*service{},
		conns: map[*h2ServerConn]struct{}{}, pending: map[net.Conn]struct{}{},
	}
	s.unaryIC = chainUnaryServer(s.cfg.unary)
	s.streamIC = chainStreamServer(s.cfg.stream)
	if s.cfg.health {
		s.health = newHealthServer()
		_ = s.Register(&healthServiceDesc, s.health)
	}
	if s.cfg.reflection {
		registerReflection(s)
	}
	for _, svc := range s.services {
		svc.builtin = true
	}
	return s
}

// Serve accepts connections on lis until Shutdown or Close. It sniffs each
// connection: the HTTP/2 preface gets gRPC/Triple, an HTTP/1.1 request line
// gets the JSON handler.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("triple: Serve called twice")
	}
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.serving = true
	if s.cfg.tls != nil {
		cfg := s.cfg.tls.Clone()
		cfg.NextProtos = []string{"h2", "http/1.1"}
		lis = tls.NewListener(lis, cfg)
	}
	s.lis = lis
	s.h1 = newConnListener(lis.Addr())
	s.hs = &http.Server{
		Handler: s,
		// An HTTP/1 client gets the HTTP/2 handshake's time for its
		// request headers, and its keep-alive connection ends after the
		// idle timeout, as an HTTP/2 connection with no call does.
		ReadHeaderTimeout: s.cfg.handshakeTimeout,
		// Zero (net/http: fall back to ReadTimeout, also zero) keeps idle
		// connections open, as WithIdleTimeout promises for d <= 0.
		IdleTimeout: max(s.cfg.idleTimeout, 0),
		ErrorLog:    log.New(slogWriter{s.cfg.logger}, "", 0),
	}
	s.hs.Protocols = new(http.Protocols)
	s.hs.Protocols.SetHTTP1(true)
	s.connWG.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.connWG.Done()
		_ = s.hs.Serve(s.h1)
	}()
	var delay time.Duration
	for {
		nc, err := lis.Accept()
		if err != nil {
			s.mu.RLock()
			closing := s.closing
			s.mu.RUnlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			_ = s.hs.Close()
			return err
		}
		delay = 0
		if !s.trackPending(nc, true) {
			_ = nc.Close()
			continue
		}
		s.connWG.Add(1)
		go s.serveConn(nc)
	}
}

// serveConn tells HTTP/2 from HTTP/1 and serves the connection.
func (s *Server) serveConn(nc net.Conn) {
	defer s.connWG.Done()
	_ = nc.SetReadDeadline(time.Now().Add(s.cfg.handshakeTimeout))
	if tc, ok := nc.(*tls.Conn); ok {
		err := tc.Handshake()
		_ = nc.SetReadDeadline(time.Time{})
		s.trackPending(nc, false)
		if err != nil {
			s.cfg.logger.Debug("triple: TLS handshake", "remote", nc.RemoteAddr(), "err", err)
			_ = nc.Close()
			return
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			s.serveH2(tc, bufio.NewReaderSize(tc, ioBufSize))
			return
		}
		s.h1.deliver(tc)
		return
	}
	br := bufio.NewReaderSize(nc, ioBufSize)
	isH2, err := sniffH2(br)
	h1 := !isH2 && (err != nil && br.Buffered() > 0 || err == nil && requestLine(br))
	_ = nc.SetReadDeadline(time.Time{})
	s.trackPending(nc, false)
	switch {
	case isH2:
		s.serveH2(nc, br)
	case h1:
		s.h1.deliver(&sniffedConn{Conn: nc, r: br})
	default: // neither the HTTP/2 preface nor an HTTP/1 request line
		_ = nc.Close()
	}
}

func (s *Server) trackPending(nc net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing {
			return false
		}
		s.pending[nc] = struct{}{}
		return true
	}
	delete(s.pending, nc)
	return true
}

func (s *Server) trackConn(sc *h2ServerConn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing {
			return false
		}
		s.conns[sc] = struct{}{}
		return true
	}
	delete(s.conns, sc)
	return true
}

// stopServing stops accepting and returns the connections to end.
func (s *Server) stopServing() ([]*h2ServerConn, *http.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	if s.lis == nil {
		return nil, nil
	}
	_ = s.lis.Close()
	for nc := range s.pending {
		_ = nc.Close()
	}
	conns := make([]*h2ServerConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	return conns, s.hs
}

// Shutdown stops accepting calls, sends GOAWAY, and waits for calls in
// flight until ctx ends; then it closes what remains.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.health != nil {
		s.health.shutdown()
	}
	conns, hs := s.stopServing()
	if hs == nil {
		return nil
	}
	for _, sc := range conns {
		sc.drain()
	}
	h1 := make(chan error, 1)
	go func() { h1 <- hs.Shutdown(ctx) }()
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.closeConns(errors.New("server shut down"))
		_ = hs.Close()
		<-done
	}
	if herr := <-h1; herr != nil && err == nil {
		err = herr
	}
	return err
}

func (s *Server) closeConns(why error) {
	s.mu.RLock()
	conns := make([]*h2ServerConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.RUnlock()
	for _, sc := range conns {
		sc.close(why)
	}
}

// Close stops the server at once, breaking calls in flight.
func (s *Server) Close() error {
	if s.health != nil {
		s.health.shutdown()
	}
	_, hs := s.stopServing()
	if hs == nil {
		return nil
	}
	s.closeConns(errors.New("server closed"))
	err := hs.Close()
	s.connWG.Wait()
	return err
}

// slogWriter routes net/http's connection-level errors (garbage on the
// port, TLS handshakes) to debug logging.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("triple: http server", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}
