package triple

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// wrapperDescriptors builds Dubbo's envelope messages (TripleWrapper.proto,
// package org.apache.dubbo.triple) as real protobuf descriptors, so the
// hand-written encoding is checked against the protobuf runtime.
func wrapperDescriptors(t testing.TB) (req, resp protoreflect.MessageDescriptor) {
	t.Helper()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	byt := descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	field := func(name string, num int32, typ *descriptorpb.FieldDescriptorProto_Type, label *descriptorpb.FieldDescriptorProto_Label) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Type: typ, Label: label, JsonName: proto.String(name)}
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("TripleWrapper.proto"),
		Package: proto.String("org.apache.dubbo.triple"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("TripleRequestWrapper"), Field: []*descriptorpb.FieldDescriptorProto{
				field("serializeType", 1, str, opt), field("args", 2, byt, rep), field("argTypes", 3, str, rep),
			}},
			{Name: proto.String("TripleResponseWrapper"), Field: []*descriptorpb.FieldDescriptorProto{
				field("serializeType", 1, str, opt), field("data", 2, byt, opt), field("type", 3, str, opt),
			}},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().Get(0), fd.Messages().Get(1)
}

func TestWrapperRequestMatchesProtobuf(t *testing.T) {
	reqDesc, _ := wrapperDescriptors(t)
	in := &WrapperRequest{SerializeType: SerializeHessian4, Args: [][]byte{{0x03, 'A', 'd', 'a'}, {}, {0x91}}, ArgTypes: []string{"java.lang.String", "java.lang.String", "int"}}
	b, err := protoCodec{}.MarshalAppend(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	// The protobuf runtime reads what we wrote...
	dm := dynamicpb.NewMessage(reqDesc)
	if err := proto.Unmarshal(b, dm); err != nil {
		t.Fatal(err)
	}
	if got := dm.Get(reqDesc.Fields().ByName("serializeType")).String(); got != SerializeHessian4 {
		t.Errorf("serializeType = %q", got)
	}
	if got := dm.Get(reqDesc.Fields().ByName("args")).List().Len(); got != 3 {
		t.Errorf("%d args, want 3", got)
	}
	// ...and writes the same bytes.
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(dm)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("encoding differs from protobuf's:\n got %x\nwant %x", b, want)
	}
	var out WrapperRequest
	if err := (protoCodec{}).Unmarshal(want, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&out, in) {
		t.Errorf("round trip: got %+v, want %+v", out, *in)
	}
}

func TestWrapperResponseMatchesProtobuf(t *testing.T) {
	_, respDesc := wrapperDescriptors(t)
	dm := dynamicpb.NewMessage(respDesc)
	dm.Set(respDesc.Fields().ByName("serializeType"), protoreflect.ValueOfString(SerializeHessian2))
	dm.Set(respDesc.Fields().ByName("data"), protoreflect.ValueOfBytes([]byte{0x05, 'h', 'e', 'l', 'l', 'o'}))
	dm.Set(respDesc.Fields().ByName("type"), protoreflect.ValueOfString("java.lang.String"))
	want, err := proto.Marshal(dm)
	if err != nil {
		t.Fatal(err)
	}
	out := WrapperResponse{ExceptionCode: 7} // stale: decoding resets it
	if err := (protoCodec{}).Unmarshal(want, &out); err != nil {
		t.Fatal(err)
	}
	exp := WrapperResponse{SerializeType: SerializeHessian2, Data: []byte{0x05, 'h', 'e', 'l', 'l', 'o'}, Type: "java.lang.String"}
	if !reflect.DeepEqual(out, exp) {
		t.Fatalf("got %+v, want %+v", out, exp)
	}
	if out.IsException() {
		t.Error("a String result reads as an exception")
	}
	// Re-encoding gives the same message (protobuf does not fix the order
	// in which a dynamic message's fields are written, so compare decoded).
	b, _ := protoCodec{}.MarshalAppend(nil, &out)
	again := dynamicpb.NewMessage(respDesc)
	if err := proto.Unmarshal(b, again); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(again, dm) {
		t.Errorf("re-encoding differs:\n got %x\nwant %x", b, want)
	}
}

func TestWrapperEnvelopeErrors(t *testing.T) {
	for name, data := range map[string][]byte{
		"truncated tag":       {0x80},
		"truncated length":    {0x0a, 0x05, 'a'},
		"varint known field":  {0x08, 0x01},
		"bad unknown field":   {0x2a, 0x09},
		"group wire type":     {0x0b},
		"length past the end": {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		t.Run(name, func(t *testing.T) {
			if err := (&WrapperRequest{}).unmarshal(data); err == nil {
				t.Error("request: no error")
			}
			if err := (&WrapperResponse{}).unmarshal(data); err == nil {
				t.Error("response: no error")
			}
		})
	}
	// Unknown fields are skipped, like protobuf does.
	var r WrapperRequest
	if err := r.unmarshal([]byte{0x20, 0x01, 0x0a, 0x01, 'x'}); err != nil || r.SerializeType != "x" {
		t.Errorf("unknown varint field: %v, %+v", err, r)
	}
}

func TestWrapperExceptionCodeHeaders(t *testing.T) {
	tests := []struct {
		name    string
		header  http.Header
		trailer http.Header
		want    int
	}{
		{"none", http.Header{}, http.Header{}, 0},
		{"header", http.Header{"Tri-Exception-Code": {"3"}}, nil, 3},
		{"lower-case header", http.Header{"tri-exception-code": {"3"}}, nil, 3},
		{"trailer", http.Header{}, http.Header{"Tri-Exception-Code": {"3"}}, 3},
		{"zero means none", http.Header{"Tri-Exception-Code": {"0"}}, nil, 0},
		{"garbage is ignored", http.Header{"Tri-Exception-Code": {"x"}}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r WrapperResponse
			readExceptionCode(&r, tt.header, tt.trailer)
			if r.ExceptionCode != tt.want {
				t.Errorf("code %d, want %d", r.ExceptionCode, tt.want)
			}
			h := http.Header{}
			setWrapperHeader(h, &r)
			if got := h.Get(hdrTriException); (got != "") != (tt.want != 0) {
				t.Errorf("server header %q for code %d", got, tt.want)
			}
		})
	}
	readExceptionCode(new(int), http.Header{"Tri-Exception-Code": {"3"}}) // not a wrapper: ignored
}

// FuzzWrapperDecode feeds arbitrary bytes to the envelope decoders: they
// must not panic, and what they accept must survive a round trip.
func FuzzWrapperDecode(f *testing.F) {
	req, _ := (&WrapperRequest{SerializeType: SerializeHessian4, Args: [][]byte{{0x03, 'A', 'd', 'a'}}, ArgTypes: []string{"java.lang.String"}}).marshalAppend(nil)
	resp, _ := (&WrapperResponse{SerializeType: SerializeHessian2, Data: []byte{0x01, 'x'}, Type: "java.lang.Exception"}).marshalAppend(nil)
	f.Add(req)
	f.Add(resp)
	f.Add([]byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r WrapperRequest
		if r.unmarshal(data) == nil {
			b, _ := r.marshalAppend(nil)
			var again WrapperRequest
			if err := again.unmarshal(b); err != nil || !reflect.DeepEqual(normReq(r), normReq(again)) {
				t.Fatalf("request round trip: %v\n%+v\n%+v", err, r, again)
			}
		}
		var s WrapperResponse
		if s.unmarshal(data) == nil {
			b, _ := s.marshalAppend(nil)
			var again WrapperResponse
			if err := again.unmarshal(b); err != nil || !bytes.Equal(s.Data, again.Data) || s.Type != again.Type || s.SerializeType != again.SerializeType {
				t.Fatalf("response round trip: %v\n%+v\n%+v", err, s, again)
			}
		}
	})
}

// normReq makes empty and nil argument slices compare equal.
func normReq(r WrapperRequest) WrapperRequest {
	for i, a := range r.Args {
		if len(a) == 0 {
			r.Args[i] = nil
		}
	}
	return r
}
