package cluster

import (
	"bytes"

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
// mirror's answer must never reach resp. ok is false for messages it
// cannot copy (neither protobuf messages nor byte slices); nil stays nil.
func CopyForMirror(req, resp any) (reqCopy, respNew any, ok bool) {
	switch v := req.(type) {
	case nil:
	case proto.Message:
		reqCopy = proto.Clone(v)
	case []byte:
		reqCopy = bytes.Clone(v)
	default:
		return nil, nil, false
	}
	switch v := resp.(type) {
	case nil:
	case proto.Message:
		respNew = v.ProtoReflect().New().Interface()
	case *[]byte:
		respNew = new([]byte)
	default:
		return nil, nil, false
	}
	return reqCopy, respNew, true
}
