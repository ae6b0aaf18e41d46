package hessian

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/shoalmesh/shoal/triple"
)

// Func serves one call of a Java method: args are the decoded arguments in
// order. It returns the result, an *Exception to throw to the caller, or
// another error, which ends the call with a status (a *triple.Error keeps
// its code).
type Func func(ctx context.Context, args []any) (any, error)

// Unary adapts a function of one argument: the argument is converted to A
// (int32 for a Java int, a registered POJO type for a Java object), and a
// call with another number of arguments fails with INVALID_ARGUMENT.
func Unary[A, R any](fn func(context.Context, A) (R, error)) Func {
	return func(ctx context.Context, args []any) (any, error) {
		if len(args) != 1 {
			return nil, triple.Errorf(triple.CodeInvalidArgument, "want 1 argument, got %d", len(args))
		}
		var a A
		if err := set(reflect.ValueOf(&a).Elem(), args[0]); err != nil {
			return nil, triple.Errorf(triple.CodeInvalidArgument, "argument 1: %v", err)
		}
		return fn(ctx, a)
	}
}

// Service is a plain Java interface served from Go: add a handler per
// method with Handle, then Register it on a triple.Server.
type Service struct {
	name    string
	methods []triple.MethodDesc
}

// NewService starts the service of a Java interface, named by its fully
// qualified name (org.example.GreetingService): callers reach its methods at
// /org.example.GreetingService/method.
func NewService(javaInterface string) *Service { return &Service{name: javaInterface} }

// Name returns the Java interface name.
func (s *Service) Name() string { return s.name }

// Handle serves method (the Java method name, greet) with fn and returns s.
// Java overloads of one name share a handler, which can tell them apart by
// the number and types of its arguments.
func (s *Service) Handle(method string, fn Func) *Service {
	s.methods = append(s.methods, triple.MethodDesc{MethodName: method, Handler: s.handler(method, fn)})
	return s
}

// Desc returns the service's descriptor, for triple.Server.Register or an sdk
// that registers descriptors itself.
func (s *Service) Desc() *triple.ServiceDesc {
	return &triple.ServiceDesc{ServiceName: s.name, Methods: append([]triple.MethodDesc(nil), s.methods...)}
}

// Register exports the service on srv, optionally under a group and version.
func (s *Service) Register(srv *triple.Server, opts ...triple.RegisterOption) error {
	if len(s.methods) == 0 {
		return fmt.Errorf("hessian: service %s has no methods; add them with Handle", s.name)
	}
	return srv.Register(s.Desc(), s, opts...)
}

// handler decodes the envelope and arguments, runs fn through the server's
// interceptors (which see the []any arguments and the Go result), and
// encodes the result or the thrown exception.
func (s *Service) handler(method string, fn Func) triple.MethodHandler {
	full := "/" + s.name + "/" + method
	return func(_ any, ctx context.Context, dec func(any) error, ic triple.UnaryServerInterceptor) (any, error) {
		var req triple.WrapperRequest
		if err := dec(&req); err != nil {
			return nil, err
		}
		st := req.SerializeType
		switch st {
		case triple.SerializeHessian2, triple.SerializeHessian4:
		case "":
			st = triple.SerializeHessian2
		default:
			return nil, triple.Errorf(triple.CodeUnimplemented, "%s: serialization %q is not supported; use hessian2", full, req.SerializeType)
		}
		args := make([]any, len(req.Args))
		for i, a := range req.Args {
			v, err := decode(a)
			if err != nil {
				return nil, triple.Errorf(triple.CodeInvalidArgument, "%s: argument %d: %v", full, i+1, err)
			}
			args[i] = v
		}
		run := func(ctx context.Context, r any) (any, error) {
			a, _ := r.([]any)
			return fn(ctx, a)
		}
		var (
			result any
			err    error
		)
		if ic == nil {
			result, err = run(ctx, args)
		} else {
			result, err = ic(ctx, args, &triple.UnaryServerInfo{Server: s, FullMethod: full}, run)
		}
		resp := &triple.WrapperResponse{SerializeType: st}
		var ex *Exception
		switch {
		case errors.As(err, &ex):
			resp.Type = "java.lang.Exception"
			resp.ExceptionCode = triple.ExceptionCodeBiz
			result = ex
		case err != nil:
			return nil, err
		default:
			resp.Type = javaTypeOf(result)
		}
		if resp.Data, err = encode(result); err != nil {
			return nil, triple.Errorf(triple.CodeInternal, "%s: result: %v", full, err)
		}
		return resp, nil
	}
}
