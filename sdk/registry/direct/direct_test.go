package direct_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/direct"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func addresses(c *mesh.Cluster) string {
	var s []string
	for _, e := range c.Ready() {
		s = append(s, e.Address)
	}
	return strings.Join(s, ",")
}

func TestWatchFiltersByInterfaceGroupVersion(t *testing.T) {
	r, err := direct.New(
		"tri://127.0.0.1:1",
		"tri://127.0.0.1:2/greet.GreetService?version=1.0.0&weight=3&zone=a",
		"tri://127.0.0.1:3/greet.GreetService?group=blue&version=2.0.0",
		"tri://127.0.0.1:4/other.Service",
	)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		key  registry.Key
		want string
	}{
		{registry.Key{Interface: "greet.GreetService"}, "127.0.0.1:1"},
		{registry.Key{Interface: "greet.GreetService", Version: "1.0.0"}, "127.0.0.1:1,127.0.0.1:2"},
		{registry.Key{Interface: "greet.GreetService", Group: "blue", Version: "2.0.0"}, "127.0.0.1:1,127.0.0.1:3"},
		{registry.Key{Interface: "greet.GreetService", Group: "*", Version: "*"}, "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"},
		{registry.Key{Interface: "greet.GreetService", Group: "red,blue", Version: "*"}, "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"},
		{registry.Key{Interface: "greet.GreetService", Group: "red,green", Version: "2.0.0"}, "127.0.0.1:1"},
		{registry.Key{Interface: "other.Service"}, "127.0.0.1:1,127.0.0.1:4"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tt := range tests {
		t.Run(tt.key.String(), func(t *testing.T) {
			w, err := r.Watch(ctx, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			s, err := w.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c, ok := s.Cluster(mesh.Destination{Service: tt.key.Interface})
			if !ok || addresses(c) != tt.want {
				t.Fatalf("endpoints = %v, want %s", addresses(c), tt.want)
			}
		})
	}
	w, _ := r.Watch(ctx, registry.Key{Interface: "greet.GreetService", Version: "1.0.0"})
	s, _ := w.Next(ctx)
	c, _ := s.Cluster(mesh.Destination{Service: "greet.GreetService"})
	if e := c.Ready()[1]; e.Weight != 3 || e.Labels["zone"] != "a" {
		t.Errorf("endpoint = %+v, want weight 3 and label zone=a", e)
	}
	// The list is static: the next Next blocks until Close.
	go func() { time.Sleep(20 * time.Millisecond); w.Close() }()
	if _, err := w.Next(ctx); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
}

func TestBadURLs(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"http://127.0.0.1:1", `scheme "http" is not supported`},
		{"tri://127.0.0.1", "not host:port"},
		{"tri://127.0.0.1:99999", "1 to 65535"},
		{"tri://127.0.0.1:1?weight=0", `weight "0"`},
		{"tri://127.0.0.1:1?weight=x", `weight "x"`},
		{"tri://127.0.0.1:1?health=sick", `health "sick"`},
	}
	for _, tt := range tests {
		_, err := direct.New("tri://127.0.0.1:5", tt.url)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "url[1]") {
			t.Errorf("New(%q) error = %v, want url[1] and %q", tt.url, err, tt.want)
		}
	}
	if _, err := direct.New(); err == nil || !strings.Contains(err.Error(), "no URLs") {
		t.Errorf("New() error = %v", err)
	}
}

func TestRegisterUnsupportedAndBuilder(t *testing.T) {
	reg, err := direct.Builder().Build(context.Background(), registry.Config{Address: "tri://127.0.0.1:1, tri://127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := reg.Register(context.Background(), registry.Instance{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Register = %v, want ErrUnsupported", err)
	}
	if _, err := reg.Watch(context.Background(), registry.Key{}); err == nil {
		t.Error("Watch of an empty interface succeeded")
	}
}
