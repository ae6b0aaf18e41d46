package filter_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
)

func TestLoggingFilters(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cc, err := filter.NewClientChain(filter.ClientLogging(l, 0))
	if err != nil {
		t.Fatal(err)
	}
	info := &call.Info{Service: "greet.GreetService", Method: "Greet", Version: "1.0.0"}
	_ = cc.Unary(func(context.Context, *call.Info, any, any) error { return nil })(context.Background(), info, nil, nil)
	_ = cc.Unary(func(context.Context, *call.Info, any, any) error { return call.Errorf(call.NotFound, "no such user") })(context.Background(), info, nil, nil)
	sc, _ := filter.NewServerChain(filter.ServerLogging(l, 0))
	_, _ = sc.Unary(func(context.Context, *call.Info, any) (any, error) { return nil, nil })(context.Background(), info, nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{
		`level=DEBUG msg="client call" path=/greet.GreetService/Greet code=ok`,
		`level=WARN msg="client call" path=/greet.GreetService/Greet code=not-found`,
		`level=DEBUG msg="server call" path=/greet.GreetService/Greet code=ok`,
	} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], "version=1.0.0") {
			t.Errorf("line %d = %s\nwant %s", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[1], `error="not-found: no such user"`) {
		t.Errorf("failure line lacks the error: %s", lines[1])
	}
}
