package cluster

import (
	"bytes"
	"reflect"

	"google.golang.org/protobuf/proto"
)

// messageSize is the encoded size of a message a stream may replay:
// protobuf messages and byte slices; false for others, which are not kept
// (the stream commits on sending one).
func messageSize(m any) (int, bool) {
	switch v := m.(type) {
	case proto.Message:
		return proto.Size(v), true
	case []byte:
		return len(v), true
	}
	return 0, false
}

// CopyForMirror returns a deep copy of req and a new, empty response of
// resp's type, for a copy of a call sent elsewhere whose answer is dropped
// (a mirror): the caller may reuse req once its own call returns, and the
// mirror's answer must never reach resp. Requests it copies: protobuf
// messages, byte slices, and plain values (strings, numbers, bools),
// which need no copy; responses: protobuf messages and any pointer. ok is
// false for others; nil stays nil.
func CopyForMirror(req, resp any) (reqCopy, respNew any, ok bool) {
	switch v := req.(type) {
	case nil:
	case proto.Message:
		reqCopy = proto.Clone(v)
	case []byte:
		reqCopy = bytes.Clone(v)
	default:
		switch reflect.TypeOf(req).Kind() {
		case reflect.Bool, reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
			reqCopy = req // a value: the interface holds its own copy
		default:
			return nil, nil, false
		}
	}
	switch v := resp.(type) {
	case nil:
	case proto.Message:
		respNew = v.ProtoReflect().New().Interface()
	default:
		t := reflect.TypeOf(resp)
		if t.Kind() != reflect.Pointer {
			return nil, nil, false
		}
		respNew = reflect.New(t.Elem()).Interface()
	}
	return reqCopy, respNew, true
}
