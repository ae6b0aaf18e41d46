//go:build unix

package lifecycle_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/sdk/lifecycle"
)

func TestRunStopsOnSIGTERM(t *testing.T) {
	started, stopped := make(chan struct{}), make(chan struct{})
	l2 := lifecycle.New(quiet)
	_ = l2.Append(lifecycle.Hook{
		Name:    "y",
		OnStart: func(context.Context) error { close(started); return nil },
		OnStop:  func(context.Context) error { close(stopped); return nil },
	})
	done := make(chan error, 1)
	go func() { done <- lifecycle.Run(context.Background(), l2, time.Second) }()
	select { // started means the signal handler is installed
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not start")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		<-stopped
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop on SIGTERM")
	}
}
