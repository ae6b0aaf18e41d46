package memnet

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
)

// Handler answers a unary call.
type Handler func(ctx context.Context, info *call.Info, req any) (any, error)

// Net joins servers and clients. The zero value is not ready; use New.
type Net struct {
	mu      sync.Mutex
	servers map[string]*Server
	next    int
}

// New returns an empty network.
func New() *Net { return &Net{servers: map[string]*Server{}, next: 40000} }

// Server serves handlers by path ("/Service/Method") once listening. A
// shutting-down server refuses new calls as connect failures.
type Server struct {
	net      *Net
	host     string
	port     int
	handlers map[string]Handler
	draining atomic.Bool
	mu       sync.Mutex
	inflight sync.WaitGroup
	Served   atomic.Int64
}

// NewServer returns a server that will listen on host:port (port 0 picks
// one).
func (n *Net) NewServer(host string, port int) *Server {
	return &Server{net: n, host: host, port: port, handlers: map[string]Handler{}}
}

// Handle mounts h at path; call before Listen.
func (s *Server) Handle(path string, h Handler) { s.handlers[path] = h }

// Listen registers the server on the network.
func (s *Server) Listen(context.Context) (net.Addr, error) {
	s.net.mu.Lock()
	defer s.net.mu.Unlock()
	if s.port == 0 {
		s.net.next++
		s.port = s.net.next
	}
	addr := net.JoinHostPort(s.host, strconv.Itoa(s.port))
	s.net.servers[addr] = s
	return &net.TCPAddr{IP: net.ParseIP(s.host), Port: s.port}, nil
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// Shutdown refuses new calls, waits for those in flight, and leaves the
// network.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.net.mu.Lock()
	delete(s.net.servers, s.Addr())
	s.net.mu.Unlock()
	return nil
}

func (s *Server) serve(ctx context.Context, info *call.Info, req any) (any, error) {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		return nil, &call.Error{Code: call.Unavailable, Connect: true, Message: s.Addr() + " is shutting down"}
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	h := s.handlers[info.Path()]
	if h == nil {
		return nil, call.Errorf(call.Unimplemented, "%s has no handler for %s", s.Addr(), info.Path())
	}
	out, err := h(ctx, info, req)
	if err == nil {
		s.Served.Add(1)
	}
	return out, err
}

// Dial implements consumer.Transport.
func (n *Net) Dial(_ context.Context, ep *mesh.Endpoint) (consumer.Conn, error) {
	return &conn{net: n, addr: ep.Address}, nil
}

type conn struct {
	net  *Net
	addr string
}

// Invoke runs the call on the server at the address. A *string resp
// receives a string result.
func (c *conn) Invoke(ctx context.Context, info *call.Info, req, resp any) error {
	c.net.mu.Lock()
	s := c.net.servers[c.addr]
	c.net.mu.Unlock()
	if s == nil {
		return &call.Error{Code: call.Unavailable, Connect: true, Message: "connection refused by " + c.addr}
	}
	out, err := s.serve(ctx, info, req)
	if err != nil {
		return err
	}
	if p, ok := resp.(*string); ok {
		if v, ok := out.(string); ok {
			*p = v
		}
	}
	return nil
}

func (c *conn) NewStream(context.Context, *call.Info) (filter.ClientStream, error) {
	return nil, call.Errorf(call.Unimplemented, "memnet has no streams")
}

func (c *conn) Close() error { return nil }
