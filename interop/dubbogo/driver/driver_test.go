package driver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/dubbogo/greet"
)

func TestRunClientRoundTrip(t *testing.T) {
	in := `{"name":"a","method":"Greet","requests":[{"name":"Ada","payload_bytes":3}],"group":"g1","attachments":{"x-tenant":"blue"}}

{"name":"b","method":"GreetBidiStream","requests":[{"name":"x"},{"name":"y"}],"timeout_ms":200}
`
	var got []Case
	var out strings.Builder
	err := RunClient(strings.NewReader(in), &out, func(c Case) Outcome {
		got = append(got, c)
		return Outcome{Code: 5, Message: c.Name}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Group != "g1" || got[0].Attachments["x-tenant"] != "blue" || got[0].Requests[0].PayloadBytes != 3 {
		t.Fatalf("cases read: %+v", got)
	}
	if got[1].Timeout() != 200*time.Millisecond || got[0].Timeout() != 20*time.Second {
		t.Errorf("timeouts %v %v", got[1].Timeout(), got[0].Timeout())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one outcome line per case, got %q", out.String())
	}
	var o Outcome
	if err := json.Unmarshal([]byte(lines[1]), &o); err != nil || o.Code != 5 || o.Message != "b" {
		t.Errorf("outcome %q: %+v %v", lines[1], o, err)
	}
}

func TestRunClientRejectsGarbage(t *testing.T) {
	err := RunClient(strings.NewReader("not json\n"), &strings.Builder{}, func(Case) Outcome { return Outcome{} })
	if err == nil {
		t.Fatal("want an error for a line that is not a case")
	}
}

func TestReply(t *testing.T) {
	req := NewRequest(Request{Name: "Ada", PayloadBytes: 4})
	resp, code, _ := Reply(context.Background(), req, "me", map[string]string{"group": "g1"})
	if code != 0 || resp.GetGreeting() != "Hello, Ada" || len(resp.GetPayload()) != 4 || resp.GetSeen()["group"] != "g1" {
		t.Errorf("reply %v code %d", resp, code)
	}
	if _, code, _ := Reply(context.Background(), NewRequest(Request{FailCode: 7}), "me", nil); code != 7 {
		t.Errorf("fail_code 7 gave %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, code, _ := Reply(ctx, NewRequest(Request{SleepMS: 5000}), "me", nil); code != 4 {
		t.Errorf("a sleep past the deadline gave %d, want 4", code)
	}
	if got := JoinNames([]*greet.GreetRequest{NewRequest(Request{Name: "a"}), NewRequest(Request{Name: "b"})}); got != "Hello, a, b" {
		t.Errorf("JoinNames: %q", got)
	}
}
