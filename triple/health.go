package triple

import (
	"context"
	"sync"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// HealthServer lets an application report per-service health through the
// built-in grpc.health.v1.Health service.
type HealthServer struct{ h *healthServer }

// SetServing marks service ("" for the whole server) serving or not.
func (hs *HealthServer) SetServing(service string, serving bool) { hs.h.SetServing(service, serving) }

type healthServer struct {
	mu       sync.Mutex
	status   map[string]healthpb.HealthCheckResponse_ServingStatus
	watchers map[string]map[chan struct{}]struct{}
	down     bool
}

func newHealthServer() *healthServer {
	return &healthServer{
		status:   map[string]healthpb.HealthCheckResponse_ServingStatus{"": healthpb.HealthCheckResponse_SERVING},
		watchers: map[string]map[chan struct{}]struct{}{},
	}
}

func (h *healthServer) SetServing(service string, serving bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	h.status[service] = st
	h.notifyLocked(service)
}

func (h *healthServer) notifyLocked(service string) {
	for ch := range h.watchers[service] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// shutdown reports NOT_SERVING for everything, for draining.
func (h *healthServer) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = true
	for s := range h.status {
		h.status[s] = healthpb.HealthCheckResponse_NOT_SERVING
		h.notifyLocked(s)
	}
}

func (h *healthServer) get(service string) (healthpb.HealthCheckResponse_ServingStatus, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.status[service]
	return st, ok
}

func (h *healthServer) check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	st, ok := h.get(req.GetService())
	if !ok {
		return nil, Errorf(CodeNotFound, "unknown service %q", req.GetService())
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

func (h *healthServer) watch(req *healthpb.HealthCheckRequest, stream ServerStream) error {
	svc := req.GetService()
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.watchers[svc] == nil {
		h.watchers[svc] = map[chan struct{}]struct{}{}
	}
	h.watchers[svc][ch] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.watchers[svc], ch)
		h.mu.Unlock()
	}()
	last := healthpb.HealthCheckResponse_ServingStatus(-1)
	for {
		st, ok := h.get(svc)
		if !ok {
			st = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		}
		if st != last {
			if err := stream.SendMsg(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-ch:
		}
	}
}

type healthService interface {
	check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error)
	watch(*healthpb.HealthCheckRequest, ServerStream) error
}

var healthServiceDesc = ServiceDesc{
	ServiceName: "grpc.health.v1.Health",
	HandlerType: (*healthService)(nil),
	Metadata:    "grpc/health/v1/health.proto",
	Methods: []MethodDesc{{
		MethodName: "Check",
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic UnaryServerInterceptor) (any, error) {
			req := new(healthpb.HealthCheckRequest)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := srv.(healthService)
			if ic == nil {
				return h.check(ctx, req)
			}
			return ic(ctx, req, nil, func(ctx context.Context, r any) (any, error) {
				return h.check(ctx, r.(*healthpb.HealthCheckRequest))
			})
		},
	}},
	Streams: []StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(srv any, stream ServerStream) error {
			req := new(healthpb.HealthCheckRequest)
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			return srv.(healthService).watch(req, stream)
		},
	}},
}

// Health returns the built-in health service, to mark services serving or
// not, or nil when it is off.
func (s *Server) Health() *HealthServer {
	if s.health == nil {
		return nil
	}
	return &HealthServer{s.health}
}
