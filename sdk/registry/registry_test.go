package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestKeyAccepts(t *testing.T) {
	p := registry.Key{Interface: "greet.GreetService", Group: "blue", Version: "1.0.0"}
	tests := []struct {
		consumer registry.Key
		want     bool
	}{
		{registry.Key{Interface: "greet.GreetService", Group: "blue", Version: "1.0.0"}, true},
		{registry.Key{Interface: "greet.GreetService", Group: "*", Version: "*"}, true},
		{registry.Key{Interface: "greet.GreetService", Group: "red, blue", Version: "1.0.0"}, true},
		{registry.Key{Interface: "greet.GreetService", Group: "red", Version: "1.0.0"}, false},
		{registry.Key{Interface: "greet.GreetService", Version: "1.0.0"}, false}, // no fallback for group
		{registry.Key{Interface: "greet.GreetService", Group: "blue"}, false},
		{registry.Key{Interface: "other.Service", Group: "*", Version: "*"}, false},
	}
	for _, tt := range tests {
		if got := tt.consumer.Accepts(p); got != tt.want {
			t.Errorf("%s accepts %s = %v, want %v", tt.consumer, p, got, tt.want)
		}
	}
	if got := p.String(); got != "blue/greet.GreetService:1.0.0" {
		t.Errorf("String = %q", got)
	}
	byApp := registry.Key{Interface: "greet.GreetService", Group: "blue", Version: "1.0.0", ProvidedBy: "greeter"}
	if !byApp.Accepts(p) {
		t.Errorf("%s does not accept %s: ProvidedBy must not narrow the providers", byApp, p)
	}
	if got := byApp.String(); got != "blue/greet.GreetService:1.0.0 (provided by greeter)" {
		t.Errorf("String = %q", got)
	}
}

func TestKeyValidateProvidedBy(t *testing.T) {
	tests := []struct {
		key  registry.Key
		want string // "" for valid
	}{
		{registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter"}, ""},
		{registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter.shop:20000"}, ""}, // the registry says what it accepts
		{registry.Key{Interface: "greet.GreetService", ProvidedBy: "   "}, `providedBy "   " has spaces`},
		{registry.Key{Interface: "greet.GreetService", ProvidedBy: "greeter app"}, `providedBy "greeter app" has spaces`},
		{registry.Key{Interface: "xds:///greeter.default.svc.cluster.local:20000", ProvidedBy: "greeter"}, "both say where to go"},
		{registry.Key{ProvidedBy: "greeter"}, "empty interface name"},
	}
	for _, tt := range tests {
		err := tt.key.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: Validate = %v, want %q", tt.key, err, tt.want)
		}
	}
}

func TestInstanceValidate(t *testing.T) {
	err := (&registry.Instance{Key: registry.Key{Group: "*"}, Address: "x"}).Validate()
	for _, want := range []string{"empty interface name", `group or version "*"`, "address"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
	byApp := registry.Instance{Key: registry.Key{Interface: "s", ProvidedBy: "greeter"}, Address: "127.0.0.1:1"}
	if err := byApp.Validate(); err == nil || !strings.Contains(err.Error(), "ProvidedBy is for consumers' references") {
		t.Errorf("Validate of an instance with ProvidedBy = %v", err)
	}
	ok := registry.Instance{Key: registry.Key{Interface: "s"}, Address: "127.0.0.1:1", Weight: 2}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
	if e := ok.Endpoint(); e.Address != "127.0.0.1:1" || e.Weight != 2 {
		t.Errorf("Endpoint = %+v", e)
	}
}

func snap(t *testing.T, rev string) *mesh.Snapshot {
	s, err := mesh.NewSnapshot(mesh.Spec{Revision: rev})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFeedDeliversChangedRevisionsOnly(t *testing.T) {
	var f registry.Feed
	w := f.Watch(registry.Key{Interface: "s"})
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		time.Sleep(10 * time.Millisecond)
		s := snap(t, "1")
		f.Publish(func(registry.Key) *mesh.Snapshot { return s })
	}()
	s, err := w.Next(ctx) // waits for the first Publish
	if err != nil || s.Revision() != "1" {
		t.Fatalf("first Next = %v, %v", s, err)
	}
	same := snap(t, "1")
	f.Publish(func(registry.Key) *mesh.Snapshot { return same })
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, err := w.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("same revision woke the watcher: %v", err)
	}
	f.Publish(func(registry.Key) *mesh.Snapshot { return nil }) // no state for this key
	s2 := snap(t, "2")
	f.Publish(func(registry.Key) *mesh.Snapshot { return s2 })
	if s, err := w.Next(ctx); err != nil || s.Revision() != "2" {
		t.Fatalf("Next = %v, %v; want revision 2", s, err)
	}
	f.Close()
	if _, err := w.Next(ctx); !errors.Is(err, registry.ErrClosed) {
		t.Fatalf("after Feed.Close: %v", err)
	}
}
