package greet

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestServiceContract pins the shape of greet.GreetService that Go, Java and
// the benchmarks all rely on: the full name and the streaming kind of every
// method. Changing greet.proto in an incompatible way fails here first.
func TestServiceContract(t *testing.T) {
	sd := File_greet_proto.Services().ByName("GreetService")
	if sd == nil {
		t.Fatal("greet.proto has no GreetService")
	}
	if got := sd.FullName(); got != "greet.GreetService" {
		t.Fatalf("service full name = %q, want greet.GreetService", got)
	}
	want := map[protoreflect.Name][2]bool{ // method -> {client streams, server streams}
		"Greet":             {false, false},
		"GreetServerStream": {false, true},
		"GreetClientStream": {true, false},
		"GreetBidiStream":   {true, true},
	}
	if n := sd.Methods().Len(); n != len(want) {
		t.Errorf("GreetService has %d methods, want %d", n, len(want))
	}
	for name, kind := range want {
		md := sd.Methods().ByName(name)
		if md == nil {
			t.Errorf("method %s missing", name)
			continue
		}
		if got := [2]bool{md.IsStreamingClient(), md.IsStreamingServer()}; got != kind {
			t.Errorf("%s streaming (client, server) = %v, want %v", name, got, kind)
		}
	}
	if GreetService_Greet_FullMethodName != "/greet.GreetService/Greet" {
		t.Errorf("grpc full method name = %q", GreetService_Greet_FullMethodName)
	}
}
