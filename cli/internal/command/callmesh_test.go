package command

import (
	"reflect"
	"testing"

	"github.com/shoalmesh/shoal/triple/hessian"
)

func TestTargetMethod(t *testing.T) {
	for _, tc := range []struct {
		target, method, svc, name string
		mesh                      bool
	}{
		{"greet.GreetService", "Greet", "greet.GreetService", "Greet", true},
		{"greet.GreetService", "other.Svc/Do", "other.Svc", "Do", true},
		{"xds:///greeter.default.svc.cluster.local:20000", "greet.GreetService/Greet", "greet.GreetService", "Greet", true},
		{"127.0.0.1:50051", "greet.GreetService.Greet", "greet.GreetService", "Greet", false},
		{"https://example.com", "/greet.GreetService/Greet", "greet.GreetService", "Greet", false},
		{"localhost", "greet.GreetService/Greet", "greet.GreetService", "Greet", false},
	} {
		if got := isMeshTarget(tc.target); got != tc.mesh {
			t.Errorf("isMeshTarget(%q) = %v", tc.target, got)
		}
		svc, name, err := targetMethod(tc.target, tc.method)
		if err != nil || svc != tc.svc || name != tc.name {
			t.Errorf("targetMethod(%q, %q) = %q, %q, %v; want %q, %q", tc.target, tc.method, svc, name, err, tc.svc, tc.name)
		}
	}
	// A bare method needs an interface-name target.
	if _, _, err := targetMethod("127.0.0.1:50051", "Greet"); exitCode(err) != ExitUsage {
		t.Errorf("bare method for an address: %v", err)
	}
}

func TestHessianArg(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want hessian.Arg
	}{
		{`java.lang.String:"Ada"`, hessian.Arg{Type: "java.lang.String", Value: "Ada"}},
		{`String:"Ada"`, hessian.Arg{Type: "java.lang.String", Value: "Ada"}},
		{`int: 3`, hessian.Arg{Type: "int", Value: int32(3)}},
		{`long:5000000000`, hessian.Arg{Type: "long", Value: int64(5000000000)}},
		{`Integer:null`, hessian.Arg{Type: "java.lang.Integer"}},
		{`boolean:true`, hessian.Arg{Type: "boolean", Value: true}},
		{`double:1.5`, hessian.Arg{Type: "double", Value: 1.5}},
		{`Map:{"a":1,"b":[2,3.5,"x"]}`, hessian.Arg{Type: "java.util.Map", Value: map[string]any{"a": int32(1), "b": []any{int32(2), 3.5, "x"}}}},
		{`org.example.Person:{"name":"Ada","age":36}`, hessian.ObjectFields("org.example.Person", map[string]any{"name": "Ada", "age": int32(36)})},
	} {
		got, err := hessianArg(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %#v, want %#v", tc.in, got, tc.want)
		}
	}
	for in, code := range map[string]int{
		`noType`:             ExitUsage,
		`:3`:                 ExitUsage,
		`int:x`:              ExitData,
		`int:"3"`:            ExitData,
		`int:3000000000`:     ExitData,
		`String:1 2`:         ExitData,
		`List:{}`:            ExitData,
		`Person:{}`:          ExitData,
		`org.example.P:"x"`:  ExitData,
		`java.lang.String:3`: ExitData,
	} {
		if _, err := hessianArg(in); exitCode(err) != code {
			t.Errorf("%s: exit %d (%v), want %d", in, exitCode(err), err, code)
		}
	}
}
