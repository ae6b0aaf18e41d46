package hessian

import (
	"reflect"

	hessian2 "github.com/apache/dubbo-go-hessian2"
	"github.com/apache/dubbo-go-hessian2/java_exception"
)

// Exception is a Java exception in wrapper mode. A client gets one as the
// error of a call whose Java method threw (the response carried
// tri-exception-code); a handler returns one to throw it to a Java caller,
// who receives an exception of class Class. The class must exist on the
// Java side and be trusted by its serialization checks: declare it in the
// interface method's throws clause.
type Exception struct {
	// Class is the fully qualified Java class name; empty means
	// java.lang.RuntimeException.
	Class string
	// Message is the exception's message (getMessage()).
	Message string
	// Value is the decoded Throwable as hessian2 returned it (client side):
	// a registered POJO, or a map of its fields. Nil for exceptions built in Go.
	Value any
}

// Throw returns an exception of a Java class with a message, for handlers.
func Throw(class, message string) *Exception { return &Exception{Class: class, Message: message} }

func (e *Exception) Error() string {
	return "java exception " + e.class() + ": " + e.Message
}

func (e *Exception) class() string {
	if e.Class == "" {
		return "java.lang.RuntimeException"
	}
	return e.Class
}

// exceptionFrom turns a decoded Throwable into an *Exception; data is its
// encoding.
func exceptionFrom(v any, data []byte) *Exception {
	ex := &Exception{Class: "java.lang.Exception", Value: v}
	defer func() {
		if c := leadingClassName(data); c != "" {
			ex.Class = c
		}
	}()
	switch x := v.(type) {
	case java_exception.Throwabler:
		if c := x.JavaClassName(); c != "" {
			ex.Class = c
		}
		ex.Message = x.Error()
		if rv := reflect.Indirect(reflect.ValueOf(x)); rv.Kind() == reflect.Struct {
			if f := rv.FieldByName("DetailMessage"); f.IsValid() && f.Kind() == reflect.String {
				ex.Message = f.String()
			}
		}
	case map[string]any:
		if c, ok := x[hessian2.ClassKey].(string); ok {
			ex.Class = c
		}
		if m, ok := x["detailMessage"].(string); ok {
			ex.Message = m
		}
	case map[any]any:
		if m, ok := x["detailMessage"].(string); ok {
			ex.Message = m
		}
	case string:
		ex.Message = x
	}
	return ex
}

// leadingClassName returns the class of the object hessian2 data starts
// with, read from its leading class definition ('C' and the class name), or
// "". Decoded exceptions of classes unknown to Go do not keep their class
// name, so it is read from the bytes.
func leadingClassName(data []byte) string {
	if len(data) < 2 || data[0] != 'C' {
		return ""
	}
	data = data[1:]
	var n int
	switch b := data[0]; {
	case b <= 0x1f: // compact string, length in the tag
		n, data = int(b), data[1:]
	case b >= 0x30 && b <= 0x33 && len(data) >= 2: // two-byte length
		n, data = int(b-0x30)<<8|int(data[1]), data[2:]
	case b == 'S' && len(data) >= 3: // final chunk
		n, data = int(data[1])<<8|int(data[2]), data[3:]
	default:
		return ""
	}
	// n counts UTF-16 units; Java class names are ASCII in practice.
	if n > len(data) {
		return ""
	}
	for _, c := range data[:n] {
		if c >= 0x80 {
			return ""
		}
	}
	return string(data[:n])
}
