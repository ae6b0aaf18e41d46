package hessian

import (
	"context"
	"fmt"
	"reflect"

	"github.com/shoalmesh/shoal/triple"
)

var (
	contextType = reflect.TypeFor[context.Context]()
	errorType   = reflect.TypeFor[error]()
)

// Method adapts a plain Go function of any arity to a Func, and checks its
// signature now rather than at the first call. fn is one of
//
//	func(ctx context.Context, a1 A1, ..., an An) (R, error)
//	func(ctx context.Context, a1 A1, ..., an An) error // a void Java method
//
// Each argument is converted to its parameter type as Unary converts its one
// argument; a call with another number of arguments fails with
// INVALID_ARGUMENT. The package documentation lists the Go types that Java
// types arrive as.
func Method(fn any) (Func, error) {
	v := reflect.ValueOf(fn)
	if !v.IsValid() || v.Kind() != reflect.Func || v.IsNil() {
		return nil, fmt.Errorf("hessian: method handler is %T, not a function; want func(context.Context, args...) (R, error)", fn)
	}
	t := v.Type()
	if err := checkSignature(t); err != nil {
		return nil, err
	}
	n := t.NumIn() - 1
	return func(ctx context.Context, args []any) (any, error) {
		if len(args) != n {
			return nil, triple.Errorf(triple.CodeInvalidArgument, "want %d arguments, got %d", n, len(args))
		}
		in := make([]reflect.Value, 0, n+1)
		in = append(in, reflect.ValueOf(&ctx).Elem())
		for i, a := range args {
			p := reflect.New(t.In(i + 1)).Elem()
			if err := set(p, a); err != nil {
				return nil, triple.Errorf(triple.CodeInvalidArgument, "argument %d: %v", i+1, err)
			}
			in = append(in, p)
		}
		out := v.Call(in)
		if err, _ := out[len(out)-1].Interface().(error); err != nil {
			return nil, err
		}
		if len(out) == 1 || isNil(out[0]) {
			return nil, nil
		}
		return out[0].Interface(), nil
	}, nil
}

// HandleFunc serves method with a plain Go function (see Method for the
// signatures it takes). It fails, and adds nothing, when fn's signature
// does not fit.
func (s *Service) HandleFunc(method string, fn any) error {
	f, err := Method(fn)
	if err != nil {
		return fmt.Errorf("hessian: %s.%s: %w", s.name, method, err)
	}
	s.Handle(method, f)
	return nil
}

// Bind makes the function variable fnPtr points to call method of the Java
// interface service through inv. The variable's type is one of the
// signatures Method takes; each argument is sent with the Java type its Go
// type stands for (string: java.lang.String, int32: int, int64: long,
// *string: java.lang.String, maps: java.util.Map, slices: java.util.List,
// a POJO: its class). For other declared Java types, use Invoke with Args.
//
//	var quote func(ctx context.Context, symbol string, qty int32) (*big.Decimal, error)
//	err := hessian.Bind(&quote, cc, "org.example.QuoteService", "quote")
func Bind(fnPtr any, inv triple.Invoker, service, method string, opts ...triple.CallOption) error {
	p := reflect.ValueOf(fnPtr)
	if p.Kind() != reflect.Pointer || p.IsNil() || p.Elem().Kind() != reflect.Func {
		return fmt.Errorf("hessian: Bind %s.%s: got %T, want a pointer to a func variable", service, method, fnPtr)
	}
	t := p.Elem().Type()
	if err := checkSignature(t); err != nil {
		return fmt.Errorf("hessian: Bind %s.%s: %w", service, method, err)
	}
	types := make([]string, t.NumIn()-1)
	for i := range types {
		types[i] = javaTypeOfType(t.In(i + 1))
	}
	p.Elem().Set(reflect.MakeFunc(t, func(in []reflect.Value) []reflect.Value {
		ctx, _ := in[0].Interface().(context.Context)
		if ctx == nil {
			ctx = context.Background()
		}
		args := make([]Arg, len(types))
		for i, typ := range types {
			args[i] = Arg{Type: typ, Value: in[i+1].Interface()}
		}
		if t.NumOut() == 1 {
			return []reflect.Value{errorValue(Invoke(ctx, inv, service, method, args, nil, opts...))}
		}
		r := reflect.New(t.Out(0))
		err := Invoke(ctx, inv, service, method, args, r.Interface(), opts...)
		return []reflect.Value{r.Elem(), errorValue(err)}
	}))
	return nil
}

// checkSignature accepts func(context.Context, A...) (R, error) and
// func(context.Context, A...) error whose argument and result types hessian2
// can carry.
func checkSignature(t reflect.Type) error {
	const want = "want func(context.Context, args...) (R, error) or func(context.Context, args...) error"
	switch {
	case t.IsVariadic():
		return fmt.Errorf("%v is variadic; a Java method has a fixed parameter list: %s", t, want)
	case t.NumIn() == 0 || t.In(0) != contextType:
		return fmt.Errorf("%v: the first parameter must be a context.Context; %s", t, want)
	case t.NumOut() == 0 || t.NumOut() > 2 || t.Out(t.NumOut()-1) != errorType:
		return fmt.Errorf("%v: the last result must be an error, after at most one value; %s", t, want)
	}
	for i := 1; i < t.NumIn(); i++ {
		if bad := uncarried(t.In(i)); bad != nil {
			return fmt.Errorf("%v: parameter %d: hessian2 cannot carry %v", t, i+1, bad)
		}
	}
	if t.NumOut() == 2 {
		if bad := uncarried(t.Out(0)); bad != nil {
			return fmt.Errorf("%v: result: hessian2 cannot carry %v", t, bad)
		}
	}
	return nil
}

// uncarried returns the part of t that has no hessian2 encoding (channels,
// functions, complex numbers, interfaces with methods), or nil.
func uncarried(t reflect.Type) reflect.Type {
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Uintptr, reflect.Complex64, reflect.Complex128:
		return t
	case reflect.Interface:
		if t.NumMethod() > 0 && !t.Implements(pojoType) {
			return t
		}
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return uncarried(t.Elem())
	case reflect.Map:
		if bad := uncarried(t.Key()); bad != nil {
			return bad
		}
		return uncarried(t.Elem())
	}
	return nil
}

func isNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return v.IsNil()
	}
	return false
}

func errorValue(err error) reflect.Value {
	if err == nil {
		return reflect.Zero(errorType)
	}
	return reflect.ValueOf(&err).Elem()
}
