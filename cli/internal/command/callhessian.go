package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	gxbig "github.com/dubbogo/gost/math/big"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/hessian"
)

// javaTypes are the short names -a accepts for Java types, and the class
// names they stand for.
var javaTypes = map[string]string{
	"String": hessian.TypeString, "Integer": "java.lang.Integer", "Long": "java.lang.Long",
	"Boolean": "java.lang.Boolean", "Double": "java.lang.Double", "Float": "java.lang.Float",
	"Map": hessian.TypeMap, "List": hessian.TypeList, "Object": hessian.TypeObject,
}

// hessianArg parses one -a: a Java type and the argument as JSON.
func hessianArg(s string) (hessian.Arg, error) {
	typ, raw, ok := strings.Cut(s, ":")
	typ = strings.TrimSpace(typ)
	if !ok || typ == "" {
		return hessian.Arg{}, usageErrorf(`bad argument %q: want TYPE:JSON, such as 'java.lang.String:"Ada"', 'int:3' or 'org.example.Person:{"name":"Ada"}'`, s)
	}
	if full, ok := javaTypes[typ]; ok {
		typ = full
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return hessian.Arg{}, dataErrorf("argument %q: %s is not JSON: %v", s, strings.TrimSpace(raw), err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return hessian.Arg{}, dataErrorf("argument %q: more than one JSON value after the type", s)
	}
	bad := func(want string) (hessian.Arg, error) {
		return hessian.Arg{}, dataErrorf("argument %q: a %s is %s", s, typ, want)
	}
	if v == nil {
		return hessian.Arg{Type: typ}, nil // null
	}
	switch typ {
	case hessian.TypeString:
		if str, ok := v.(string); ok {
			return hessian.Arg{Type: typ, Value: str}, nil
		}
		return bad("a JSON string")
	case hessian.TypeInt, "java.lang.Integer":
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil && i >= math.MinInt32 && i <= math.MaxInt32 {
				return hessian.Arg{Type: typ, Value: int32(i)}, nil
			}
		}
		return bad("a 32-bit integer")
	case hessian.TypeLong, "java.lang.Long":
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				return hessian.Arg{Type: typ, Value: i}, nil
			}
		}
		return bad("a 64-bit integer")
	case hessian.TypeBoolean, "java.lang.Boolean":
		if b, ok := v.(bool); ok {
			return hessian.Arg{Type: typ, Value: b}, nil
		}
		return bad("true or false")
	case hessian.TypeDouble, "java.lang.Double", "float", "java.lang.Float":
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				return hessian.Arg{Type: typ, Value: f}, nil
			}
		}
		return bad("a number")
	case hessian.TypeMap, "java.util.HashMap":
		if m, ok := v.(map[string]any); ok {
			return hessian.Arg{Type: typ, Value: jsonToJava(m)}, nil
		}
		return bad("a JSON object")
	case hessian.TypeList, "java.util.ArrayList":
		if l, ok := v.([]any); ok {
			return hessian.Arg{Type: typ, Value: jsonToJava(l)}, nil
		}
		return bad("a JSON array")
	case hessian.TypeObject:
		return hessian.Arg{Type: typ, Value: jsonToJava(v)}, nil
	}
	if m, ok := v.(map[string]any); ok && strings.Contains(typ, ".") {
		return hessian.ObjectFields(typ, jsonToJava(m).(map[string]any)), nil
	}
	return hessian.Arg{}, dataErrorf("argument %q: %s is not a type shoal knows: give a class name with its fields as a JSON object, or one of String, int, long, boolean, double, Map, List", s, typ)
}

// jsonToJava turns decoded JSON into values hessian2 encodes as Java
// would read them: integers as int (long beyond 32 bits), other numbers as
// double, objects as maps, arrays as lists.
func jsonToJava(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			if i >= math.MinInt32 && i <= math.MaxInt32 {
				return int32(i)
			}
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonToJava(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonToJava(e)
		}
		return out
	}
	return v
}

// javaToJSON turns a decoded hessian2 value into one encoding/json prints:
// maps with non-string keys get their keys printed, big decimals become
// strings.
func javaToJSON(v any) any {
	switch x := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = javaToJSON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = javaToJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = javaToJSON(e)
		}
		return out
	case *gxbig.Decimal:
		return x.String()
	}
	return v
}

// runHessianCall calls a method of a plain Java interface in Triple's
// wrapper mode, each argument encoded with hessian2.
func runHessianCall(ctx context.Context, e *env, f *callFlags, wire triple.Protocol, target, method string) error {
	if f.protocol == "http" {
		return usageErrorf("--hessian calls over --protocol grpc or triple, not http")
	}
	if f.count > 1 {
		return usageErrorf("-n repeats protobuf calls; --hessian makes one call")
	}
	if f.dataSet || len(f.protos) > 0 {
		return usageErrorf("--hessian takes its arguments from -a TYPE:JSON, not -d or --proto")
	}
	args := make([]hessian.Arg, 0, len(f.args))
	for _, a := range f.args {
		arg, err := hessianArg(a)
		if err != nil {
			return err
		}
		args = append(args, arg)
	}
	svc, name, md, err := f.parseCall(target, method)
	if err != nil {
		return err
	}
	ctx, cancel := f.context(ctx)
	defer cancel()
	ctx = triple.NewOutgoingContext(ctx, md)
	var inv triple.Invoker
	var opts []triple.CallOption
	var ep *answeredBy
	if isMeshTarget(target) {
		r, err := openMesh(ctx, f, wire, target)
		if err != nil {
			return err
		}
		defer r.close()
		inv, ep = r.client, r.endpoint
	} else {
		cc, err := dial(target, triple.WithProtocol(wire))
		if err != nil {
			return err
		}
		defer cc.Close()
		inv = cc
		if f.group != "" {
			opts = append(opts, triple.WithGroup(f.group))
		}
		if f.version != "" {
			opts = append(opts, triple.WithVersion(f.version))
		}
	}
	var reply any
	err = hessian.Invoke(ctx, inv, svc, name, args, &reply, opts...)
	var ex *hessian.Exception
	if errors.As(err, &ex) {
		// Java maps a business exception to UNKNOWN (2) in IDL mode.
		err = &exitError{code: int(triple.CodeUnknown), err: fmt.Errorf("%s.%s threw %s: %s", svc, name, ex.Class, ex.Message)}
	}
	c := &caller{e: e, f: f, endpoint: ep}
	c.status(err)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(javaToJSON(reply), "", "  ")
	if err != nil {
		return fmt.Errorf("print the result of %s.%s: %w", svc, name, err)
	}
	return writeJSONAs(e.stdout, f.output, b)
}
