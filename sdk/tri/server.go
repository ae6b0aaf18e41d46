package tri

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/provider"
)

// Export is one service implementation to serve.
type Export struct {
	// Desc is the generated service descriptor (greetv1.GreetService_ServiceDesc).
	Desc *triple.ServiceDesc
	// Impl implements the service.
	Impl any
	// Group and Version export it under a Dubbo group and version; they
	// should match the config's services entry.
	Group, Version string
}

// Server runs a triple.Server on one address as a provider.Server.
type Server struct {
	srv  *triple.Server
	addr string
	wrap func(net.Listener) (net.Listener, error)

	mu     sync.Mutex
	served chan error
}

// NewServer serves srv on host:port once Listen is called (port 0 picks a
// free port).
func NewServer(srv *triple.Server, host string, port int) *Server {
	return &Server{srv: srv, addr: net.JoinHostPort(host, strconv.Itoa(port))}
}

// WrapListener sets a function that wraps the listener once it is bound
// and before serving starts (registry-istio's inbound.Guard.Listen, which
// applies istiod's TLS and authorization for the bound address). Call it
// before Listen.
func (s *Server) WrapListener(f func(net.Listener) (net.Listener, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wrap = f
}

// Triple returns the underlying server.
func (s *Server) Triple() *triple.Server { return s.srv }

// Listen binds the address and serves in the background.
func (s *Server) Listen(ctx context.Context) (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.served != nil {
		return nil, errors.New("tri: server already listening")
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("tri: listen on %s: %w; choose a free port (protocols[].port, 0 for any)", s.addr, err)
	}
	if s.wrap != nil {
		wrapped, err := s.wrap(lis)
		if err != nil {
			_ = lis.Close()
			return nil, fmt.Errorf("tri: listener on %s: %w", lis.Addr(), err)
		}
		lis = wrapped
	}
	s.served = make(chan error, 1)
	go func(done chan<- error) { done <- s.srv.Serve(lis) }(s.served)
	return lis.Addr(), nil
}

// Shutdown stops accepting calls (GOAWAY), waits for those in flight
// until ctx ends, and waits for Serve to return.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	served := s.served
	s.mu.Unlock()
	err := s.srv.Shutdown(ctx)
	if served != nil {
		select {
		case serr := <-served:
			err = errors.Join(err, serr)
		case <-ctx.Done():
			err = errors.Join(err, s.srv.Close(), ctx.Err())
		}
	}
	return err
}

// Servers builds a triple.Server for each configured protocol, with the
// exports mounted on it and the application's server filters run around
// every handler, and keeps the built-in health service in step with the
// provider's readiness.
//
//	s := tri.NewServers(exports)
//	a, err := app.New(cfg, app.WithServers(s.Factory()), app.WithServing(s.SetServing))
type Servers struct {
	exports []Export
	opts    []triple.ServerOption
	wrap    func(net.Listener) (net.Listener, error)

	mu      sync.Mutex
	servers []*triple.Server
}

// NewServers returns the server set; opts are passed to triple.NewServer.
func NewServers(exports []Export, opts ...triple.ServerOption) *Servers {
	return &Servers{exports: exports, opts: opts}
}

// WrapListeners sets a function that wraps every server's bound listener
// (see Server.WrapListener); call it before the app starts. With
// registry-istio's inbound.Guard:
//
//	s := tri.NewServers(exports, triple.WithUnaryInterceptors(g.UnaryServerInterceptor()),
//		triple.WithStreamInterceptors(g.StreamServerInterceptor())).WrapListeners(g.Listen)
func (s *Servers) WrapListeners(f func(net.Listener) (net.Listener, error)) *Servers {
	s.wrap = f
	return s
}

// Factory returns the app.ServerFactory.
func (s *Servers) Factory() app.ServerFactory {
	return func(p config.Protocol, filters *filter.ServerChain) (provider.Server, error) {
		if p.Name != "tri" {
			return nil, fmt.Errorf("tri: protocol %q is not Triple; use name: tri", p.Name)
		}
		o := append([]triple.ServerOption{}, s.opts...)
		if filters != nil && len(filters.Names()) > 0 {
			o = append(o, triple.WithUnaryInterceptors(UnaryServerInterceptor(filters)),
				triple.WithStreamInterceptors(StreamServerInterceptor(filters)))
		}
		srv := triple.NewServer(o...)
		var errs []error
		for i, e := range s.exports {
			var ro []triple.RegisterOption
			if e.Group != "" {
				ro = append(ro, triple.ServiceGroup(e.Group))
			}
			if e.Version != "" {
				ro = append(ro, triple.ServiceVersion(e.Version))
			}
			if err := srv.Register(e.Desc, e.Impl, ro...); err != nil {
				errs = append(errs, fmt.Errorf("tri: exports[%d]: %w", i, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.servers = append(s.servers, srv)
		s.mu.Unlock()
		ts := NewServer(srv, p.Host, p.Port)
		ts.wrap = s.wrap
		return ts, nil
	}
}

// SetServing marks the whole server ("") and every exported service as
// serving or not in grpc.health.v1, for app.WithServing: probes then see
// a provider as serving only while it is registered.
func (s *Servers) SetServing(serving bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, srv := range s.servers {
		h := srv.Health()
		if h == nil {
			continue
		}
		h.SetServing("", serving)
		for _, e := range s.exports {
			h.SetServing(e.Desc.ServiceName, serving)
		}
	}
}

type handlerKey struct{}

// UnaryServerInterceptor runs a server filter chain as a triple
// interceptor. The chain is composed once; each call carries its triple
// handler in the context to the end of the chain.
func UnaryServerInterceptor(chain *filter.ServerChain) triple.UnaryServerInterceptor {
	run := chain.Unary(func(ctx context.Context, _ *call.Info, req any) (any, error) {
		h, _ := ctx.Value(handlerKey{}).(triple.UnaryHandler)
		if h == nil {
			return nil, call.Errorf(call.Internal, "tri: no handler in the filter chain's context")
		}
		return h(ctx, req)
	})
	return func(ctx context.Context, req any, info *triple.UnaryServerInfo, handler triple.UnaryHandler) (any, error) {
		ci := infoFromServer(ctx, info.FullMethod)
		return run(context.WithValue(ctx, handlerKey{}, handler), ci, req)
	}
}

type streamCall struct {
	srv     any
	handler triple.StreamHandler
}

// StreamServerInterceptor runs a server filter chain's stream filters as
// a triple stream interceptor. A filter may wrap the stream; the wrapper
// must still be a triple.ServerStream (embed the one it was given).
func StreamServerInterceptor(chain *filter.ServerChain) triple.StreamServerInterceptor {
	run := chain.Stream(func(ctx context.Context, _ *call.Info, ss filter.ServerStream) error {
		sc, _ := ctx.Value(handlerKey{}).(streamCall)
		ts, ok := ss.(triple.ServerStream)
		if sc.handler == nil || !ok {
			return call.Errorf(call.Internal, "tri: a server filter replaced the stream with %T, which is not a triple.ServerStream; embed the stream it was given", ss)
		}
		return sc.handler(sc.srv, ts)
	})
	return func(srv any, ss triple.ServerStream, info *triple.StreamServerInfo, handler triple.StreamHandler) error {
		ctx := ss.Context()
		ci := infoFromServer(ctx, info.FullMethod)
		ci.Streaming = true
		return run(context.WithValue(ctx, handlerKey{}, streamCall{srv: srv, handler: handler}), ci, ss)
	}
}

func infoFromServer(ctx context.Context, fullMethod string) *call.Info {
	ci := &call.Info{}
	if ti, ok := triple.CallInfoFromContext(ctx); ok {
		ci.Service, ci.Method, ci.Group, ci.Version = ti.Service, ti.Method, ti.Group, ti.Version
	} else {
		ci.Service, ci.Method = splitMethod(fullMethod)
	}
	if md, ok := triple.FromIncomingContext(ctx); ok && len(md) > 0 {
		ci.Attachments = make(call.Attachments, len(md))
		for k, v := range md {
			if len(v) > 0 {
				ci.Attachments[k] = v[0]
			}
		}
	}
	return ci
}

func splitMethod(full string) (service, method string) {
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '/' {
			svc := full[:i]
			if len(svc) > 0 && svc[0] == '/' {
				svc = svc[1:]
			}
			return svc, full[i+1:]
		}
	}
	return "", full
}
