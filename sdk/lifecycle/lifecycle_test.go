package lifecycle_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/sdk/lifecycle"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type recorder struct{ events []string }

func (r *recorder) hook(name string, startErr, stopErr error) lifecycle.Hook {
	return lifecycle.Hook{
		Name:    name,
		OnStart: func(context.Context) error { r.events = append(r.events, "start "+name); return startErr },
		OnStop:  func(context.Context) error { r.events = append(r.events, "stop "+name); return stopErr },
	}
}

func TestStartInOrderStopInReverse(t *testing.T) {
	r := &recorder{}
	l := lifecycle.New(quiet)
	for _, n := range []string{"server", "register", "ready"} {
		if err := l.Append(r.hook(n, nil, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Append(lifecycle.Hook{Name: "no-op"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(r.hook("late", nil, nil)); err == nil || !strings.Contains(err.Error(), "after Start") {
		t.Errorf("Append while running: %v", err)
	}
	if err := l.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "start server,start register,start ready,stop ready,stop register,stop server"
	if got := strings.Join(r.events, ","); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestFailedStartRollsBack(t *testing.T) {
	r := &recorder{}
	l := lifecycle.New(quiet)
	_ = l.Append(r.hook("server", nil, errors.New("drain timed out")))
	_ = l.Append(r.hook("register", errors.New("registry down"), nil))
	_ = l.Append(r.hook("never", nil, nil))
	err := l.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "start register: registry down") || !strings.Contains(err.Error(), "stop server: drain timed out") {
		t.Fatalf("Start error = %v", err)
	}
	if got := strings.Join(r.events, ","); got != "start server,start register,stop server" {
		t.Errorf("events %s", got)
	}
}

func TestStopGoesOnAfterErrors(t *testing.T) {
	r := &recorder{}
	l := lifecycle.New(quiet)
	_ = l.Append(r.hook("a", nil, errors.New("a failed")))
	_ = l.Append(r.hook("b", nil, errors.New("b failed")))
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := l.Stop(context.Background())
	if err == nil || !strings.Contains(err.Error(), "a failed") || !strings.Contains(err.Error(), "b failed") {
		t.Errorf("Stop error = %v", err)
	}
	if got := strings.Join(r.events, ","); got != "start a,start b,stop b,stop a" {
		t.Errorf("events %s", got)
	}
}

func TestRunStopsOnContextAndSignal(t *testing.T) {
	r := &recorder{}
	l := lifecycle.New(quiet)
	_ = l.Append(r.hook("x", nil, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := lifecycle.Run(ctx, l, time.Second); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.events, ","); got != "start x,stop x" {
		t.Errorf("events %s", got)
	}
}
