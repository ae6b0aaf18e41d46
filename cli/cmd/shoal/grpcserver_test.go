package main

import (
	"net"

	"github.com/rogpeppe/go-internal/testscript"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	v1alphareflectiongrpc "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
)

// setupGRPCGo starts two grpc-go servers with the health service and a
// service without a schema (shoal.test.v1.NoSchema): $GRPCGO
// with reflection v1 and v1alpha, $GRPCALPHA with v1alpha only (as older
// servers have).
func setupGRPCGo(env *testscript.Env) error {
	start := func(name string, reflect func(*grpc.Server)) error {
		srv := grpc.NewServer()
		hs := health.NewServer()
		healthpb.RegisterHealthServer(srv, hs)
		// A service the server lists but has no schema for.
		srv.RegisterService(&grpc.ServiceDesc{ServiceName: "shoal.test.v1.NoSchema", HandlerType: (*any)(nil), Metadata: "shoal/test/v1/noschema.proto"}, struct{}{})
		reflect(srv)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(lis)
		}()
		env.Defer(func() {
			hs.Shutdown()
			srv.Stop()
			<-done
		})
		env.Setenv(name, lis.Addr().String())
		return nil
	}
	if err := start("GRPCGO", func(s *grpc.Server) { reflection.Register(s) }); err != nil {
		return err
	}
	return start("GRPCALPHA", func(s *grpc.Server) {
		v1alphareflectiongrpc.RegisterServerReflectionServer(s, reflection.NewServer(reflection.ServerOptions{Services: s}))
	})
}
