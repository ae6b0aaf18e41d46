package hessian

import (
	"fmt"
	"reflect"
	"sync"
	"time"

	hessian2 "github.com/apache/dubbo-go-hessian2"
	"github.com/apache/dubbo-go-hessian2/java_exception"
)

// POJO is a Go struct that stands for a Java class: JavaClassName returns the
// class's fully qualified name. Field names map to lower camel case, or to
// the `hessian:"name"` tag.
type POJO = hessian2.POJO

// RegisterPOJO makes hessian2 encode values of o's type as the Java class o
// names, and decode that class into o's type. Register each POJO type once,
// before calls use it (the registry is process-wide).
func RegisterPOJO(o POJO) {
	hessian2.RegisterPOJO(o)
	t := reflect.TypeOf(o)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		pojoStructs.Store(o.JavaClassName(), t)
	}
}

// pojoStructs maps the Java class names of the POJOs registered with
// RegisterPOJO to their struct types, for the decoder's rewrites.
var pojoStructs sync.Map

// Java type names of common declared types, for Arg.Type.
const (
	TypeString  = "java.lang.String"
	TypeInt     = "int"
	TypeLong    = "long"
	TypeBoolean = "boolean"
	TypeDouble  = "double"
	TypeBytes   = "[B"
	TypeObject  = "java.lang.Object"
	TypeMap     = "java.util.Map"
	TypeList    = "java.util.List"
	TypeDate    = "java.util.Date"
)

// Arg is one argument of a call: a Go value and the Java class name of the
// parameter type the method declares (Java servers pick overloads by it).
type Arg struct {
	Type  string
	Value any
}

// String is a java.lang.String argument.
func String(s string) Arg { return Arg{Type: TypeString, Value: s} }

// Int is a Java int argument.
func Int(i int32) Arg { return Arg{Type: TypeInt, Value: i} }

// Long is a Java long argument.
func Long(i int64) Arg { return Arg{Type: TypeLong, Value: i} }

// Object is an argument of a POJO parameter type, named by the POJO.
func Object(p POJO) Arg { return Arg{Type: p.JavaClassName(), Value: p} }

// Fields is an object of a Java class given by its field values, for a
// caller with no Go struct of the class (the shoal CLI builds arguments from
// JSON): it encodes as an object of Class, as a registered POJO does.
type Fields struct {
	Class  string
	Values map[string]any
}

// ObjectFields is an argument of a Java class parameter given as its
// fields.
func ObjectFields(class string, values map[string]any) Arg {
	return Arg{Type: class, Value: Fields{Class: class, Values: values}}
}

// Value is an argument whose Java type is guessed from the Go type: strings
// are java.lang.String, int32 int, int64 and int long, POJOs their class. Use
// an explicit Arg when the method declares another type.
func Value(v any) Arg { return Arg{Type: javaTypeOf(v), Value: v} }

// javaTypeOf guesses the Java class name Dubbo would report for v.
func javaTypeOf(v any) string {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() == reflect.Pointer && rv.IsNil() {
		return TypeObject
	}
	if p, ok := v.(POJO); ok {
		return p.JavaClassName()
	}
	if f, ok := v.(Fields); ok {
		return f.Class
	}
	if rv.Kind() == reflect.Pointer {
		return TypeObject
	}
	return javaTypeOfType(rv.Type())
}

var (
	pojoType = reflect.TypeFor[POJO]()
	timeType = reflect.TypeFor[time.Time]()
)

// javaTypeOfType is the Java type a value of Go type t stands for: the
// declared parameter type Bind sends. Pointers to Go basic types stand for
// Java's boxed types (*int32: java.lang.Integer), which may be null.
func javaTypeOfType(t reflect.Type) string {
	switch {
	case t == timeType:
		return TypeDate
	case t.Implements(pojoType):
		if t.Kind() == reflect.Pointer {
			return reflect.New(t.Elem()).Interface().(POJO).JavaClassName()
		}
		return reflect.Zero(t).Interface().(POJO).JavaClassName()
	case t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(pojoType):
		return reflect.New(t).Interface().(POJO).JavaClassName()
	}
	switch t.Kind() {
	case reflect.String:
		return TypeString
	case reflect.Int32:
		return TypeInt
	case reflect.Int, reflect.Int64:
		return TypeLong
	case reflect.Bool:
		return TypeBoolean
	case reflect.Float64:
		return TypeDouble
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return TypeBytes
		}
		return TypeList
	case reflect.Array:
		return TypeList
	case reflect.Map:
		return TypeMap
	case reflect.Pointer:
		switch t.Elem().Kind() {
		case reflect.String:
			return TypeString
		case reflect.Int32:
			return "java.lang.Integer"
		case reflect.Int, reflect.Int64:
			return "java.lang.Long"
		case reflect.Bool:
			return "java.lang.Boolean"
		case reflect.Float64:
			return "java.lang.Double"
		}
	}
	return TypeObject
}

// encode serializes one value with hessian2; *Exception values become Java
// Throwables of their class.
func encode(v any) (b []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("hessian2: encode %T: %v", v, p)
		}
	}()
	e := hessian2.NewEncoder()
	if f, ok := v.(Fields); ok {
		err = e.EncodeMapAsClass(f.Class, f.Values)
	} else if x, ok := v.(*Exception); ok {
		err = e.EncodeMapAsClass(x.class(), map[string]any{
			"detailMessage":        x.Message,
			"stackTrace":           []java_exception.StackTraceElement{},
			"suppressedExceptions": []any{},
			"cause":                nil,
		})
	} else {
		err = e.Encode(v)
	}
	if err != nil {
		return nil, fmt.Errorf("hessian2: encode %T: %w", v, err)
	}
	return e.Buffer(), nil
}

// decode reads the single hessian2 value of data, keeping the null values
// of Java's typed maps and the empty lists of POJO fields (rewriteJava).
// The codec is reachable by any caller, so a panic inside it becomes an
// error.
func decode(data []byte) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("hessian2: malformed value: %v", p)
		}
	}()
	d := hessian2.NewDecoder(rewriteJava(data))
	v, err = d.Decode()
	if err != nil {
		return nil, fmt.Errorf("hessian2: %w", err)
	}
	return v, nil
}
