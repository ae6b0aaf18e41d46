package cases

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

func TestDefaultCasesAreValid(t *testing.T) {
	cs, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{}
	for _, c := range cs {
		methods[c.Method] = true
	}
	for _, m := range []string{MethodUnary, MethodServerStream, MethodClientStream, MethodBidiStream, MethodWrapperGreet, MethodWrapperDescribe, MethodWrapperFail} {
		if !methods[m] {
			t.Errorf("no case exercises %s", m)
		}
	}
	for _, f := range []string{"known_failures.txt", "known_flaky.txt"} {
		if _, err := LoadKnownFailures(f); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseRejectsBadCases(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"unknown method", "cases: [{name: a, method: Hello, requests: [{}]}]", `unknown method "Hello"`},
		{"unary with two requests", "cases: [{name: a, method: Greet, requests: [{}, {}]}]", "exactly one request"},
		{"stream without request", "cases: [{name: a, method: GreetBidiStream}]", "at least one request"},
		{"bad code", "cases: [{name: a, method: Greet, requests: [{}], want: {code: Nope}}]", `unknown status code name "Nope"`},
		{"duplicate", "cases: [{name: a, method: Greet, requests: [{}]}, {name: a, method: Greet, requests: [{}]}]", "duplicate name"},
		{"unknown field", "cases: [{name: a, method: Greet, requests: [{}], wants: {}}]", "field wants not found"},
		{"unknown need", "cases: [{name: a, method: Greet, requests: [{}], needs: [magic]}]", `unknown need "magic"`},
		{"empty", "cases: []", "defines no case"},
		{"wrapper without the need", "cases: [{name: a, method: greet, requests: [{}]}]", `add "wrapper" to needs`},
		{"wrapper with two requests", "cases: [{name: a, method: fail, requests: [{}, {}], needs: [wrapper]}]", "exactly one request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	c := Case{Name: "x", Method: MethodUnary, Want: Want{
		Responses: 1, GreetingContains: []string{"Ada"}, PayloadBytes: 3,
		Seen: map[string]string{"x-tenant": "blue"},
	}}
	good := Outcome{Responses: []Response{{Greeting: "Hello, Ada", PayloadBytes: 3, Seen: map[string]string{"x-tenant": "blue"}}}}
	if err := Check(c, good); err != nil {
		t.Fatalf("Check(good) = %v", err)
	}
	bad := []Outcome{
		{Code: codes.Internal},
		{},
		{Responses: []Response{{Greeting: "Hello", PayloadBytes: 3, Seen: map[string]string{"x-tenant": "blue"}}}},
		{Responses: []Response{{Greeting: "Hello, Ada", PayloadBytes: 2, Seen: map[string]string{"x-tenant": "blue"}}}},
		{Responses: []Response{{Greeting: "Hello, Ada", PayloadBytes: 3, Seen: map[string]string{"x-tenant": "red"}}}},
	}
	for i, o := range bad {
		if err := Check(c, o); err == nil {
			t.Errorf("Check(bad[%d]) passed", i)
		}
	}
	c.Want.NotSeen = []string{"group"}
	if err := Check(c, good); err != nil {
		t.Errorf("Check(good) with not_seen: %v", err)
	}
	grouped := Outcome{Responses: []Response{{Greeting: "Hello, Ada", PayloadBytes: 3, Seen: map[string]string{"x-tenant": "blue", "group": "g1"}}}}
	if err := Check(c, grouped); err == nil || !strings.Contains(err.Error(), "want it absent") {
		t.Errorf("Check with a group that must be absent: %v", err)
	}
	c.Want = Want{Code: "NotFound"}
	if err := Check(c, Outcome{Code: codes.NotFound}); err != nil {
		t.Errorf("expected error code: %v", err)
	}
}

func TestParseKnownFailures(t *testing.T) {
	kf, err := ParseKnownFailures(strings.NewReader("# header\n\ngrpc-go shoal unary  # because\n"))
	if err != nil {
		t.Fatal(err)
	}
	if why, ok := kf[Key("grpc-go", "shoal", "unary")]; !ok || why != "because" {
		t.Errorf("kf = %v", kf)
	}
	if _, err := ParseKnownFailures(strings.NewReader("too few\n")); err == nil {
		t.Error("malformed line accepted")
	}
}

func TestCheckException(t *testing.T) {
	c := Case{Name: "x", Method: MethodWrapperFail, Want: Want{Exception: WrapperException, MessageContains: []string{"boom"}}}
	tests := []struct {
		name    string
		o       Outcome
		wantErr string
	}{
		{"thrown", Outcome{Exception: WrapperException, Message: "boom!"}, ""},
		{"decoded as a result", Outcome{Responses: []Response{{Greeting: "boom"}}}, "exception"},
		{"other class", Outcome{Exception: "java.lang.RuntimeException", Message: "boom"}, "want \"" + WrapperException},
		{"other message", Outcome{Exception: WrapperException, Message: "bang"}, `does not contain "boom"`},
		{"status error", Outcome{Code: codes.Unknown, Message: "boom"}, "status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(c, tt.o)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Check = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	// A thrown exception where none is expected fails too.
	if err := Check(Case{Name: "y", Method: MethodWrapperGreet, Want: Want{Responses: 0}}, Outcome{Exception: WrapperException}); err == nil {
		t.Error("an unexpected exception passed")
	}
}
