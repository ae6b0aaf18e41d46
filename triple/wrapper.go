package triple

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Wrapper mode: Dubbo calls methods of plain Java interfaces (non-protobuf
// parameters or results) over Triple by putting each argument, serialized on
// its own (hessian2 by default), into a protobuf envelope. The call is still
// application/grpc+proto; only the message changes. The envelopes are
// TripleRequestWrapper and TripleResponseWrapper of proto package
// org.apache.dubbo.triple. This file encodes them and carries the
// tri-exception-code header with the response; package triple/hessian turns
// Go values into arguments and results.

// Serialization names used in wrapper envelopes. Dubbo Java writes
// "hessian4" for hessian2 and reads both.
const (
	SerializeHessian2 = "hessian2"
	SerializeHessian4 = "hessian4"
)

// ExceptionCodeBiz is the tri-exception-code of a business exception: the
// method threw, and the response's Data holds the serialized Throwable.
const ExceptionCodeBiz = 3

// WrapperRequest is the TripleRequestWrapper envelope of a wrapper-mode call.
// Pass a *WrapperRequest as the request and a *WrapperResponse as the reply
// of Invoker.Invoke, or receive one in a MethodHandler's decode function.
type WrapperRequest struct {
	// SerializeType names the serialization of Args: "hessian2" or "hessian4".
	SerializeType string
	// Args holds each argument serialized on its own.
	Args [][]byte
	// ArgTypes holds the Java class names of the declared parameter types
	// (java.lang.String, int, ...); Java servers use them to pick overloads.
	ArgTypes []string
}

// WrapperResponse is the TripleResponseWrapper envelope of a wrapper-mode
// response.
type WrapperResponse struct {
	// SerializeType names the serialization of Data; servers echo the
	// request's.
	SerializeType string
	// Data is the serialized result, or the Throwable when ExceptionCode is
	// set.
	Data []byte
	// Type is the Java class name of the declared result type;
	// "java.lang.Exception" when Data holds an exception.
	Type string
	// ExceptionCode travels in the tri-exception-code response header, not
	// in the envelope: non-zero (ExceptionCodeBiz) means the method threw and
	// Data is the exception, while the call itself succeeded (grpc-status 0).
	// A client that ignores it would decode an exception as a result.
	ExceptionCode int
}

// javaExceptionType is the Type Dubbo Java writes for a thrown exception.
const javaExceptionType = "java.lang.Exception"

// IsException reports whether the response carries a thrown exception: a
// tri-exception-code, or the type Java servers write for exceptions.
func (m *WrapperResponse) IsException() bool {
	return m.ExceptionCode != 0 || m.Type == javaExceptionType
}

// rawMessage is a message that encodes itself without a generated protobuf
// type; the proto codec defers to it.
type rawMessage interface {
	marshalAppend(b []byte) ([]byte, error)
	unmarshal(data []byte) error
}

var (
	_ rawMessage = (*WrapperRequest)(nil)
	_ rawMessage = (*WrapperResponse)(nil)
)

// Field numbers of the envelopes.
const (
	fieldSerializeType = 1
	fieldArgs          = 2 // request
	fieldArgTypes      = 3 // request
	fieldData          = 2 // response
	fieldType          = 3 // response
)

func (m *WrapperRequest) marshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	b = appendString(b, fieldSerializeType, m.SerializeType)
	for _, a := range m.Args {
		b = protowire.AppendTag(b, fieldArgs, protowire.BytesType)
		b = protowire.AppendBytes(b, a)
	}
	for _, t := range m.ArgTypes {
		b = protowire.AppendTag(b, fieldArgTypes, protowire.BytesType)
		b = protowire.AppendString(b, t)
	}
	return b, nil
}

func (m *WrapperRequest) unmarshal(data []byte) error {
	*m = WrapperRequest{}
	return walkFields(data, func(num protowire.Number, v []byte) error {
		switch num {
		case fieldSerializeType:
			m.SerializeType = string(v)
		case fieldArgs:
			m.Args = append(m.Args, append([]byte{}, v...))
		case fieldArgTypes:
			m.ArgTypes = append(m.ArgTypes, string(v))
		}
		return nil
	})
}

func (m *WrapperResponse) marshalAppend(b []byte) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	b = appendString(b, fieldSerializeType, m.SerializeType)
	if len(m.Data) > 0 {
		b = protowire.AppendTag(b, fieldData, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Data)
	}
	b = appendString(b, fieldType, m.Type)
	return b, nil
}

func (m *WrapperResponse) unmarshal(data []byte) error {
	*m = WrapperResponse{} // the client sets ExceptionCode from the headers afterwards
	return walkFields(data, func(num protowire.Number, v []byte) error {
		switch num {
		case fieldSerializeType:
			m.SerializeType = string(v)
		case fieldData:
			m.Data = append([]byte{}, v...)
		case fieldType:
			m.Type = string(v)
		}
		return nil
	})
}

// appendString writes a proto3 string field, omitted when empty.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

var errWrapperField = errors.New("a field of the envelope is not length-delimited")

// walkFields calls fn with each length-delimited field of data; unknown
// fields are skipped, as protobuf does, but the known ones must be bytes.
func walkFields(data []byte, fn func(protowire.Number, []byte) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return fmt.Errorf("wrapper envelope: %w", protowire.ParseError(n))
		}
		data = data[n:]
		if typ != protowire.BytesType {
			if num >= fieldSerializeType && num <= fieldArgTypes {
				return fmt.Errorf("wrapper envelope field %d: %w", num, errWrapperField)
			}
			n = protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return fmt.Errorf("wrapper envelope: %w", protowire.ParseError(n))
			}
			data = data[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return fmt.Errorf("wrapper envelope field %d: %w", num, protowire.ParseError(n))
		}
		data = data[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}

// exceptionCodeOf returns the code a reply carries for the
// tri-exception-code header (server side).
func exceptionCodeOf(m any) int {
	if w, ok := m.(*WrapperResponse); ok && w != nil {
		return w.ExceptionCode
	}
	return 0
}

// setWrapperHeader puts a reply's exception code into the response headers
// (server side, before they are written).
func setWrapperHeader(h http.Header, m any) {
	if code := exceptionCodeOf(m); code != 0 {
		h.Set(hdrTriException, strconv.Itoa(code))
	}
}

// readExceptionCode stores the tri-exception-code of a response in a
// *WrapperResponse reply (client side). Java 3.3 sends it in the headers;
// trailers are read too, to be lenient.
func readExceptionCode(reply any, hs ...http.Header) {
	w, ok := reply.(*WrapperResponse)
	if !ok || w == nil {
		return
	}
	for _, h := range hs {
		if v := strings.TrimSpace(headerGet(h, hdrTriException)); v != "" {
			if code, err := strconv.Atoi(v); err == nil && code != 0 {
				w.ExceptionCode = code
				return
			}
		}
	}
}
