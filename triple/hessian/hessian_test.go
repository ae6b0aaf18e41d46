package hessian_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/hessian"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	service   = "org.example.GreetingService"
	failClass = "org.example.GreetingException"
)

// person is a Java POJO of the test interface.
type person struct {
	Name     string
	Age      int32
	Greeting string
	Seen     map[string]string
}

func (person) JavaClassName() string { return "org.example.Person" }

func init() { hessian.RegisterPOJO(&person{}) }

// seen reports the call's group, version and attachments.
func seen(ctx context.Context) map[string]string {
	out := map[string]string{}
	if md, ok := triple.FromIncomingContext(ctx); ok {
		for k := range md {
			out[strings.ToLower(k)] = md.Get(k)
		}
	}
	if ci, ok := triple.CallInfoFromContext(ctx); ok {
		out["group"], out["version"] = ci.Group, ci.Version
	}
	return out
}

func newService() *hessian.Service {
	return hessian.NewService(service).
		Handle("greet", hessian.Unary(func(_ context.Context, name string) (string, error) {
			return "Hello, " + name, nil
		})).
		Handle("describe", hessian.Unary(func(ctx context.Context, p *person) (*person, error) {
			p.Greeting = "Hello, " + p.Name
			p.Age++
			p.Seen = seen(ctx)
			return p, nil
		})).
		Handle("fail", hessian.Unary(func(_ context.Context, why string) (string, error) {
			return "", hessian.Throw(failClass, why)
		})).
		Handle("status", hessian.Unary(func(_ context.Context, why string) (string, error) {
			return "", triple.Errorf(triple.CodeNotFound, "%s", why)
		})).
		Handle("add", func(_ context.Context, args []any) (any, error) {
			var sum int64
			for _, a := range args {
				n, ok := a.(int32)
				if !ok {
					return nil, hessian.Throw("java.lang.IllegalArgumentException", "not an int")
				}
				sum += int64(n)
			}
			return sum, nil
		}).
		Handle("nothing", func(context.Context, []any) (any, error) { return nil, nil })
}

// start serves the test service plain and under group g1, version 2.0.0.
func start(t *testing.T, opts ...triple.ServerOption) *triple.ClientConn {
	t.Helper()
	return serve(t, func(srv *triple.Server) error {
		svc := newService()
		if err := svc.Register(srv); err != nil {
			return err
		}
		return svc.Register(srv, triple.ServiceGroup("g1"), triple.ServiceVersion("2.0.0"))
	}, opts...)
}

// serve runs a server on loopback with what register adds, and dials it.
func serve(t *testing.T, register func(*triple.Server) error, opts ...triple.ServerOption) *triple.ClientConn {
	t.Helper()
	srv := triple.NewServer(opts...)
	if err := register(srv); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	cc, err := triple.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return cc
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestCallString(t *testing.T) {
	cc := start(t)
	got, err := hessian.Call[string](ctx(t), cc, service, "greet", []hessian.Arg{hessian.String("Ada")})
	if err != nil {
		t.Fatal(err)
	}
	if got != "Hello, Ada" {
		t.Errorf("got %q", got)
	}
	// Java servers fall back to the lower-cased method name; so do we.
	if got, err = hessian.Call[string](ctx(t), cc, service, "Greet", []hessian.Arg{hessian.String("Bob")}); err != nil || got != "Hello, Bob" {
		t.Errorf("Greet: %q, %v", got, err)
	}
}

func TestCallPOJOGroupVersionAttachments(t *testing.T) {
	cc := start(t)
	c := triple.AppendToOutgoingContext(ctx(t), "x-tenant", "blue")
	got, err := hessian.Call[*person](c, cc, service, "describe",
		[]hessian.Arg{hessian.Object(&person{Name: "Ada", Age: 36})},
		triple.WithGroup("g1"), triple.WithVersion("2.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Ada" || got.Age != 37 || got.Greeting != "Hello, Ada" {
		t.Errorf("got %+v", got)
	}
	for k, v := range map[string]string{"group": "g1", "version": "2.0.0", "x-tenant": "blue"} {
		if got.Seen[k] != v {
			t.Errorf("server saw %s=%q, want %q (all: %v)", k, got.Seen[k], v, got.Seen)
		}
	}
	// The result also converts to a struct value.
	v, err := hessian.Call[person](ctx(t), cc, service, "describe", []hessian.Arg{hessian.Value(person{Name: "Bo"})})
	if err != nil || v.Greeting != "Hello, Bo" {
		t.Errorf("by value: %+v, %v", v, err)
	}
}

// An object given by its fields reaches the server as the class's POJO,
// and its Java type travels with it.
func TestCallObjectFields(t *testing.T) {
	cc := start(t)
	arg := hessian.ObjectFields("org.example.Person", map[string]any{"name": "Ada", "age": int32(36)})
	if arg.Type != "org.example.Person" {
		t.Errorf("type %q", arg.Type)
	}
	got, err := hessian.Call[*person](ctx(t), cc, service, "describe", []hessian.Arg{arg})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Ada" || got.Age != 37 || got.Greeting != "Hello, Ada" {
		t.Errorf("got %+v", got)
	}
	// Value names the class too.
	got, err = hessian.Call[*person](ctx(t), cc, service, "describe", []hessian.Arg{hessian.Value(hessian.Fields{Class: "org.example.Person", Values: map[string]any{"name": "Bo"}})})
	if err != nil || got.Greeting != "Hello, Bo" {
		t.Errorf("by Value: %+v, %v", got, err)
	}
}

func TestCallException(t *testing.T) {
	cc := start(t)
	var reply string
	err := hessian.Invoke(ctx(t), cc, service, "fail", []hessian.Arg{hessian.String("no luck")}, &reply)
	var ex *hessian.Exception
	if !errors.As(err, &ex) {
		t.Fatalf("error %T %v, want *hessian.Exception", err, err)
	}
	if ex.Class != failClass || ex.Message != "no luck" {
		t.Errorf("exception %q %q", ex.Class, ex.Message)
	}
	if reply != "" {
		t.Errorf("the exception was decoded as a result too: %q", reply)
	}
	if triple.CodeOf(err) != triple.CodeUnknown {
		t.Errorf("code %v", triple.CodeOf(err))
	}
	if !strings.Contains(err.Error(), failClass) {
		t.Errorf("message %q lacks the class", err)
	}
}

// The envelope and header, as a raw client sees them: status OK,
// tri-exception-code 3, type java.lang.Exception.
func TestExceptionOnTheWire(t *testing.T) {
	cc := start(t)
	arg, err := hessian.HessianString("x")
	if err != nil {
		t.Fatal(err)
	}
	var resp triple.WrapperResponse
	var hdr triple.Metadata
	err = cc.Invoke(ctx(t), "/"+service+"/fail", &triple.WrapperRequest{
		SerializeType: triple.SerializeHessian2, Args: [][]byte{arg}, ArgTypes: []string{hessian.TypeString},
	}, &resp, triple.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ExceptionCode != triple.ExceptionCodeBiz || resp.Type != "java.lang.Exception" || resp.SerializeType != triple.SerializeHessian2 {
		t.Errorf("response %+v", resp)
	}
}

// A server that flags the exception only by header (not by type) must
// still be read as throwing.
func TestExceptionByHeaderOnly(t *testing.T) {
	srv := triple.NewServer()
	payload, err := hessian.HessianThrowable()
	if err != nil {
		t.Fatal(err)
	}
	desc := &triple.ServiceDesc{ServiceName: service, Methods: []triple.MethodDesc{{
		MethodName: "greet",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ triple.UnaryServerInterceptor) (any, error) {
			var req triple.WrapperRequest
			if err := dec(&req); err != nil {
				return nil, err
			}
			return &triple.WrapperResponse{SerializeType: req.SerializeType, Data: payload, Type: hessian.TypeString, ExceptionCode: 3}, nil
		},
	}}}
	if err := srv.Register(desc, struct{}{}); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer func() { _ = srv.Close() }()
	cc, _ := triple.Dial(lis.Addr().String())
	defer cc.Close()
	_, err = hessian.Call[string](ctx(t), cc, service, "greet", []hessian.Arg{hessian.String("Ada")})
	var ex *hessian.Exception
	if !errors.As(err, &ex) || ex.Class != failClass || ex.Message != "by header" {
		t.Fatalf("got %v, want the %s thrown", err, failClass)
	}
}

func TestCallErrors(t *testing.T) {
	cc := start(t)
	tests := []struct {
		name   string
		method string
		args   []hessian.Arg
		opts   []triple.CallOption
		want   triple.Code
	}{
		{"status error", "status", []hessian.Arg{hessian.String("gone")}, nil, triple.CodeNotFound},
		{"unknown method", "nope", nil, nil, triple.CodeUnimplemented},
		{"unknown group", "greet", []hessian.Arg{hessian.String("x")}, []triple.CallOption{triple.WithGroup("nope")}, triple.CodeUnimplemented},
		{"too many arguments", "greet", []hessian.Arg{hessian.String("a"), hessian.String("b")}, nil, triple.CodeInvalidArgument},
		{"wrong argument type", "greet", []hessian.Arg{hessian.Int(3)}, nil, triple.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hessian.Call[string](ctx(t), cc, service, tt.method, tt.args, tt.opts...)
			if got := triple.CodeOf(err); got != tt.want {
				t.Errorf("code %v (%v), want %v", got, err, tt.want)
			}
			var ex *hessian.Exception
			if errors.As(err, &ex) {
				t.Errorf("a status error read as a Java exception: %v", err)
			}
		})
	}
}

func TestCallRawArgs(t *testing.T) {
	cc := start(t)
	sum, err := hessian.Call[int64](ctx(t), cc, service, "add", []hessian.Arg{hessian.Int(2), hessian.Int(40)})
	if err != nil || sum != 42 {
		t.Errorf("add: %d, %v", sum, err)
	}
	// Result conversion: a Java long into a Go int.
	n, err := hessian.Call[int](ctx(t), cc, service, "add", []hessian.Arg{hessian.Int(1)})
	if err != nil || n != 1 {
		t.Errorf("add as int: %d, %v", n, err)
	}
	if err := hessian.Invoke(ctx(t), cc, service, "nothing", nil, nil); err != nil {
		t.Errorf("void: %v", err)
	}
	_, err = hessian.Call[string](ctx(t), cc, service, "add", []hessian.Arg{hessian.Int(1)})
	if triple.CodeOf(err) != triple.CodeInternal {
		t.Errorf("long into string: %v, want INTERNAL", err)
	}
}

func TestUnsupportedSerialization(t *testing.T) {
	cc := start(t)
	var resp triple.WrapperResponse
	err := cc.Invoke(ctx(t), "/"+service+"/greet", &triple.WrapperRequest{SerializeType: "fastjson2", Args: [][]byte{{'"', 'x', '"'}}}, &resp)
	if triple.CodeOf(err) != triple.CodeUnimplemented || !strings.Contains(err.Error(), "fastjson2") {
		t.Errorf("got %v, want UNIMPLEMENTED naming fastjson2", err)
	}
}

func TestInterceptorSeesArguments(t *testing.T) {
	var got []any
	var method string
	cc := start(t, triple.WithUnaryInterceptors(func(ctx context.Context, req any, info *triple.UnaryServerInfo, h triple.UnaryHandler) (any, error) {
		got, _ = req.([]any)
		method = info.FullMethod
		return h(ctx, req)
	}))
	if _, err := hessian.Call[string](ctx(t), cc, service, "greet", []hessian.Arg{hessian.String("Ada")}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "Ada" || method != "/"+service+"/greet" {
		t.Errorf("interceptor saw %v at %s", got, method)
	}
}

func TestRegisterWithoutMethods(t *testing.T) {
	if err := hessian.NewService(service).Register(triple.NewServer()); err == nil {
		t.Error("no error for a service without methods")
	}
}

// TestMalformedArgumentRefused: an argument that announces a class of
// 2^31-1 fields in ten bytes gets INVALID_ARGUMENT and the provider goes on
// serving. The old provider handed it to dubbo-go-hessian2, which asked
// for tens of GB and ended the process ("fatal error: runtime: out of
// memory").
func TestMalformedArgumentRefused(t *testing.T) {
	cc := start(t)
	bomb := []byte{'C', 0x01, 'P', 'I', 0x7f, 0xff, 0xff, 0xff, 0x01, 'a'}
	var resp triple.WrapperResponse
	err := cc.Invoke(ctx(t), "/"+service+"/greet", &triple.WrapperRequest{
		SerializeType: triple.SerializeHessian2, Args: [][]byte{bomb}, ArgTypes: []string{hessian.TypeString},
	}, &resp)
	if triple.CodeOf(err) != triple.CodeInvalidArgument || !strings.Contains(err.Error(), "2147483647 fields") {
		t.Errorf("got %v, want INVALID_ARGUMENT naming the 2147483647 fields", err)
	}
	if got, err := hessian.Call[string](ctx(t), cc, service, "greet", []hessian.Arg{hessian.String("Ada")}); err != nil || got != "Hello, Ada" {
		t.Errorf("the next call: %q, %v", got, err)
	}
}
