package hessian

import (
	"context"

	"github.com/shoalmesh/shoal/triple"
)

// Invoke calls method of the Java interface service through inv (a
// *triple.ClientConn or an sdk reference) and stores the result in reply, a
// pointer (nil for void methods). If the Java method threw, the error is an
// *Exception; failures of the call itself are *triple.Error values.
func Invoke(ctx context.Context, inv triple.Invoker, service, method string, args []Arg, reply any, opts ...triple.CallOption) error {
	req := &triple.WrapperRequest{
		SerializeType: triple.SerializeHessian4, // what Dubbo Java sends for hessian2
		Args:          make([][]byte, 0, len(args)),
		ArgTypes:      make([]string, 0, len(args)),
	}
	for i, a := range args {
		b, err := encode(a.Value)
		if err != nil {
			return triple.Errorf(triple.CodeInternal, "argument %d of %s.%s: %v", i, service, method, err)
		}
		typ := a.Type
		if typ == "" {
			typ = javaTypeOf(a.Value)
		}
		req.Args = append(req.Args, b)
		req.ArgTypes = append(req.ArgTypes, typ)
	}
	var resp triple.WrapperResponse
	if err := inv.Invoke(ctx, "/"+service+"/"+method, req, &resp, opts...); err != nil {
		return err
	}
	if st := resp.SerializeType; st != "" && st != triple.SerializeHessian2 && st != triple.SerializeHessian4 {
		return triple.Errorf(triple.CodeInternal, "%s.%s answered with serialization %q; only hessian2 is supported", service, method, st)
	}
	var v any
	if len(resp.Data) > 0 {
		var err error
		if v, err = decode(resp.Data); err != nil {
			return triple.Errorf(triple.CodeInternal, "result of %s.%s: %v", service, method, err)
		}
	}
	if resp.IsException() {
		return exceptionFrom(v, resp.Data)
	}
	if reply == nil {
		return nil
	}
	if err := assign(v, reply); err != nil {
		return triple.Errorf(triple.CodeInternal, "result of %s.%s: %v", service, method, err)
	}
	return nil
}

// Call is Invoke returning the result as an R.
func Call[R any](ctx context.Context, inv triple.Invoker, service, method string, args []Arg, opts ...triple.CallOption) (R, error) {
	var r R
	err := Invoke(ctx, inv, service, method, args, &r, opts...)
	return r, err
}
