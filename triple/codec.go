package triple

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Codec serializes messages. The proto codec is the default; a server also
// uses the JSON codec for HTTP/1.1 calls. Wrapper-mode serializations
// (hessian2 for plain Java interfaces) plug in as further codecs.
type Codec interface {
	// Name is the codec's name as in the content type: "proto", "json".
	Name() string
	// MarshalAppend appends the encoding of msg to b.
	MarshalAppend(b []byte, msg any) ([]byte, error)
	// Unmarshal decodes data into msg; it must not keep data.
	Unmarshal(data []byte, msg any) error
}

type protoCodec struct{}

func (protoCodec) Name() string { return "proto" }

func (protoCodec) MarshalAppend(b []byte, msg any) ([]byte, error) {
	if r, ok := msg.(rawMessage); ok { // wrapper-mode envelopes
		return r.marshalAppend(b)
	}
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("triple: proto codec cannot marshal %T: not a proto.Message", msg)
	}
	return proto.MarshalOptions{}.MarshalAppend(b, m)
}

func (protoCodec) Unmarshal(data []byte, msg any) error {
	if r, ok := msg.(rawMessage); ok { // wrapper-mode envelopes
		return r.unmarshal(data)
	}
	m, ok := msg.(proto.Message)
	if !ok {
		return fmt.Errorf("triple: proto codec cannot unmarshal into %T: not a proto.Message", msg)
	}
	return proto.Unmarshal(data, m)
}

type jsonCodec struct{}

func (jsonCodec) Name() string { return "json" }

func (jsonCodec) MarshalAppend(b []byte, msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("triple: json codec cannot marshal %T: not a proto.Message", msg)
	}
	return protojson.MarshalOptions{}.MarshalAppend(b, m)
}

func (jsonCodec) Unmarshal(data []byte, msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return fmt.Errorf("triple: json codec cannot unmarshal into %T: not a proto.Message", msg)
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, m)
}
