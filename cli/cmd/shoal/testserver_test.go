package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/rogpeppe/go-internal/testscript"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/hessian"
)

// testProto is the schema of the test service. The scripts carry a copy as
// a file for their --proto cases.
const testProto = `syntax = "proto3";
package shoal.test.v1;
import "google/protobuf/timestamp.proto";

service TestService {
  rpc Echo(EchoRequest) returns (EchoResponse);
  rpc Count(EchoRequest) returns (stream EchoResponse);
  rpc Collect(stream EchoRequest) returns (EchoResponse);
  rpc Chat(stream EchoRequest) returns (stream EchoResponse);
}

message EchoRequest {
  string name = 1;
  int32 count = 2;
  int32 fail_code = 3;
  google.protobuf.Timestamp at = 4;
}

message EchoResponse {
  string message = 1;
  map<string, string> seen = 2;
  google.protobuf.Timestamp at = 3;
}
`

var (
	registerOnce sync.Once
	echoService  protoreflect.ServiceDescriptor
)

// registerTestProto compiles testProto and registers it in the global
// registry, where triple's reflection service looks.
func registerTestProto() {
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"shoal/test/v1/test.proto": testProto}),
	})}
	fds, err := c.Compile(context.Background(), "shoal/test/v1/test.proto")
	if err != nil {
		panic(err)
	}
	if err := protoregistry.GlobalFiles.RegisterFile(fds[0]); err != nil {
		panic(err)
	}
	echoService = fds[0].Services().ByName("TestService")
}

// echoServer answers the test service with dynamic messages: Echo greets
// and reports the attachments, protocol and group it saw, fail_code makes it fail, Count
// streams count answers, Collect joins names, Chat answers each request.
type echoServer struct{ prefix string }

func (s echoServer) desc() *triple.ServiceDesc {
	sd := echoService
	m := func(n string) protoreflect.MethodDescriptor { return sd.Methods().ByName(protoreflect.Name(n)) }
	return &triple.ServiceDesc{
		ServiceName: string(sd.FullName()),
		Metadata:    sd.ParentFile().Path(),
		Methods: []triple.MethodDesc{{MethodName: "Echo", Handler: func(_ any, ctx context.Context, dec func(any) error, _ triple.UnaryServerInterceptor) (any, error) {
			req := dynamicpb.NewMessage(m("Echo").Input())
			if err := dec(req); err != nil {
				return nil, err
			}
			if code := req.Get(field(req, "fail_code")).Int(); code != 0 {
				return nil, triple.Errorf(triple.Code(code), "failing as asked with code %d", code)
			}
			_ = triple.SetHeader(ctx, triple.Pairs("x-test-header", "h1"))
			_ = triple.SetTrailer(ctx, triple.Pairs("x-test-trailer", "t1"))
			return s.answer(ctx, m("Echo").Output(), "Hello, "+req.Get(field(req, "name")).String(), req), nil
		}}},
		Streams: []triple.StreamDesc{
			{StreamName: "Count", ServerStreams: true, Handler: func(_ any, st triple.ServerStream) error {
				req := dynamicpb.NewMessage(m("Count").Input())
				if err := st.RecvMsg(req); err != nil {
					return err
				}
				n := req.Get(field(req, "count")).Int()
				for i := range min(n, 100) {
					if err := st.SendMsg(s.answer(st.Context(), m("Count").Output(), strings.Repeat("#", int(i+1)), nil)); err != nil {
						return err
					}
				}
				if code := req.Get(field(req, "fail_code")).Int(); code != 0 {
					return triple.Errorf(triple.Code(code), "failing after %d messages as asked", n)
				}
				return nil
			}},
			{StreamName: "Collect", ClientStreams: true, Handler: func(_ any, st triple.ServerStream) error {
				var names []string
				for {
					req := dynamicpb.NewMessage(m("Collect").Input())
					if err := st.RecvMsg(req); err != nil {
						if errors.Is(err, io.EOF) {
							break
						}
						return err
					}
					names = append(names, req.Get(field(req, "name")).String())
				}
				return st.SendMsg(s.answer(st.Context(), m("Collect").Output(), strings.Join(names, ","), nil))
			}},
			{StreamName: "Chat", ClientStreams: true, ServerStreams: true, Handler: func(_ any, st triple.ServerStream) error {
				for {
					req := dynamicpb.NewMessage(m("Chat").Input())
					if err := st.RecvMsg(req); err != nil {
						if errors.Is(err, io.EOF) {
							return nil
						}
						return err
					}
					if err := st.SendMsg(s.answer(st.Context(), m("Chat").Output(), "re: "+req.Get(field(req, "name")).String(), nil)); err != nil {
						return err
					}
				}
			}},
		},
	}
}

func (s echoServer) answer(ctx context.Context, md protoreflect.MessageDescriptor, msg string, req *dynamicpb.Message) *dynamicpb.Message {
	resp := dynamicpb.NewMessage(md)
	resp.Set(field(resp, "message"), protoreflect.ValueOfString(s.prefix+msg))
	if in, ok := triple.FromIncomingContext(ctx); ok {
		seen := resp.Mutable(field(resp, "seen")).Map()
		for k, vs := range in {
			if strings.HasPrefix(k, "x-") || strings.HasPrefix(k, "tri-service-") {
				seen.Set(protoreflect.ValueOfString(k).MapKey(), protoreflect.ValueOfString(strings.Join(vs, ",")))
			}
		}
	}
	if ci, ok := triple.CallInfoFromContext(ctx); ok && req != nil { // Echo only: streams keep their golden files short
		seen := resp.Mutable(field(resp, "seen")).Map()
		seen.Set(protoreflect.ValueOfString("protocol").MapKey(), protoreflect.ValueOfString(ci.Protocol))
		if ci.Group != "" {
			seen.Set(protoreflect.ValueOfString("group").MapKey(), protoreflect.ValueOfString(ci.Group))
		}
	}
	if req != nil && req.Has(field(req, "at")) {
		resp.Set(field(resp, "at"), req.Get(field(req, "at")))
	}
	return resp
}

func field(m *dynamicpb.Message, name string) protoreflect.FieldDescriptor {
	return m.Descriptor().Fields().ByName(protoreflect.Name(name))
}

var _ = timestamppb.Now // the schema imports timestamp.proto: keep its Go type linked in

// greetingService is a plain-Java-interface style service (wrapper mode,
// hessian2) for `shoal call --hessian`: shoal.test.Greeting.greet(String)
// and add(int, long).
func greetingService() *hessian.Service {
	svc := hessian.NewService("shoal.test.Greeting")
	svc.Handle("greet", hessian.Unary(func(_ context.Context, name string) (string, error) {
		return "Hello, " + name, nil
	}))
	if err := svc.HandleFunc("add", func(_ context.Context, a int32, b int64) (int64, error) { return int64(a) + b, nil }); err != nil {
		panic(err)
	}
	return svc
}

// setupServers starts the servers a script talks to and stops them when the
// script ends.
func setupServers(env *testscript.Env) error {
	registerOnce.Do(registerTestProto)
	start := func(opts ...triple.ServerOption) (string, error) {
		srv := triple.NewServer(opts...)
		if err := srv.Register(echoServer{}.desc(), struct{}{}); err != nil {
			return "", err
		}
		if err := srv.Register(echoServer{prefix: "[g1] "}.desc(), struct{}{}, triple.ServiceGroup("g1"), triple.ServiceVersion("2.0.0")); err != nil {
			return "", err
		}
		if err := greetingService().Register(srv); err != nil {
			return "", err
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(lis)
		}()
		env.Defer(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
			<-done
		})
		return lis.Addr().String(), nil
	}
	addr, err := start()
	if err != nil {
		return err
	}
	env.Setenv("TRIPLE", addr)
	if addr, err = start(triple.WithoutReflection()); err != nil {
		return err
	}
	env.Setenv("NOREFLECT", addr)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	env.Setenv("CLOSED", lis.Addr().String())
	if err := lis.Close(); err != nil {
		return err
	}
	// A port that was free a moment ago, for a process the script starts.
	if lis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return err
	}
	env.Setenv("FREEPORT", strconv.Itoa(lis.Addr().(*net.TCPAddr).Port))
	return lis.Close()
}
