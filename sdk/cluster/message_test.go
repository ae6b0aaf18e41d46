package cluster_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoalmesh/shoal/sdk/cluster"
)

func TestCopyForMirror(t *testing.T) {
	req, resp := wrapperspb.String("hi"), wrapperspb.String("answer")
	r, s, ok := cluster.CopyForMirror(req, resp)
	if !ok || r == any(req) || !proto.Equal(r.(*wrapperspb.StringValue), req) || s == any(resp) || s.(*wrapperspb.StringValue).GetValue() != "" {
		t.Errorf("protobuf: %v %v %v; want a copy of the request and a new empty response", r, s, ok)
	}
	b := []byte("raw")
	r, s, ok = cluster.CopyForMirror(b, new([]byte))
	if !ok || &r.([]byte)[0] == &b[0] || string(r.([]byte)) != "raw" || s.(*[]byte) == nil {
		t.Errorf("bytes: %v %v %v", r, s, ok)
	}
	var out string
	r, s, ok = cluster.CopyForMirror("plain", &out)
	if !ok || r != "plain" || s.(*string) == &out {
		t.Errorf("plain values: %v %v %v", r, s, ok)
	}
	if _, _, ok := cluster.CopyForMirror(&struct{ A []int }{}, &out); ok {
		t.Error("a pointer to an arbitrary struct was copied; its fields could be shared")
	}
	if r, s, ok := cluster.CopyForMirror(nil, nil); !ok || r != nil || s != nil {
		t.Errorf("nil: %v %v %v", r, s, ok)
	}
}
