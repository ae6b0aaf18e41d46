package file_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/file"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func write(t *testing.T, path, content string) {
	t.Helper()
	// Write next to the file and rename, as editors and Register do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, path string) *file.Registry {
	t.Helper()
	r, err := file.New(path, file.WithLogger(quiet), file.WithDebounce(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func watch(t *testing.T, r registry.Discovery, key registry.Key) registry.Watcher {
	t.Helper()
	w, err := r.Watch(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func next(t *testing.T, w registry.Watcher, d time.Duration) (*mesh.Snapshot, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return w.Next(ctx)
}

func ready(s *mesh.Snapshot, svc string) string {
	c, ok := s.Cluster(mesh.Destination{Service: svc})
	if !ok {
		return "<no cluster>"
	}
	var a []string
	for _, e := range c.Ready() {
		a = append(a, e.Address)
	}
	return strings.Join(a, ",")
}

const one = `
services:
  greet.GreetService:
    instances:
      - address: 127.0.0.1:50051
`

const two = `
services:
  greet.GreetService:
    instances:
      - address: 127.0.0.1:50051
      - address: 127.0.0.1:50052
        weight: 3
`

func TestHotReloadAddsEndpointWithoutRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.yaml")
	write(t, path, one)
	r := open(t, path)
	w := watch(t, r, registry.Key{Interface: "greet.GreetService"})
	s, err := next(t, w, 5*time.Second)
	if err != nil || ready(s, "greet.GreetService") != "127.0.0.1:50051" {
		t.Fatalf("first state: %v, %v", s, err)
	}
	write(t, path, two)
	s, err = next(t, w, 5*time.Second)
	if err != nil || ready(s, "greet.GreetService") != "127.0.0.1:50051,127.0.0.1:50052" {
		t.Fatalf("after the edit: %v, %v", ready(s, "greet.GreetService"), err)
	}
	// An in-place write (no rename) is seen too.
	if err := os.WriteFile(path, []byte(one), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = next(t, w, 5*time.Second)
	if err != nil || ready(s, "greet.GreetService") != "127.0.0.1:50051" {
		t.Fatalf("after the in-place write: %v, %v", ready(s, "greet.GreetService"), err)
	}
}

func TestBadEditKeepsLastGoodState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.yaml")
	write(t, path, one)
	r := open(t, path)
	w := watch(t, r, registry.Key{Interface: "greet.GreetService"})
	if _, err := next(t, w, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	write(t, path, strings.Replace(two, "127.0.0.1:50052", "127.0.0.1", 1))
	deadline := time.Now().Add(5 * time.Second)
	for r.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "services.greet.GreetService.instances[1].address") {
		t.Fatalf("Err() = %v, want the rejected field", err)
	}
	if _, err := next(t, w, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a rejected edit reached the watcher: %v", err)
	}
	// A new watcher still gets the last good state.
	s, err := next(t, watch(t, r, registry.Key{Interface: "greet.GreetService"}), 5*time.Second)
	if err != nil || ready(s, "greet.GreetService") != "127.0.0.1:50051" {
		t.Fatalf("last good state: %v, %v", s, err)
	}
	write(t, path, two)
	s, err = next(t, w, 5*time.Second)
	if err != nil || ready(s, "greet.GreetService") != "127.0.0.1:50051,127.0.0.1:50052" {
		t.Fatalf("after the fix: %v, %v", s, err)
	}
	if r.Err() != nil {
		t.Errorf("Err() after the fix = %v, want nil", r.Err())
	}
}

func TestUnrelatedEditsDoNotWakeWatchers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.yaml")
	write(t, path, one)
	r := open(t, path)
	w := watch(t, r, registry.Key{Interface: "greet.GreetService"})
	if _, err := next(t, w, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	write(t, path, one+"  other.Service:\n    instances:\n      - address: 127.0.0.1:1\n")
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if s, err := next(t, w, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("watcher woke for another service: %v, %v", s, err)
	}
}

func TestBadFiles(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"not yaml", "services: [", "not valid registry YAML"},
		{"unknown field", "services:\n  s:\n    instance: []\n", "field instance not found"},
		{"no port", "services:\n  s:\n    instances: [{address: 10.0.0.1}]\n", "services.s.instances[0].address"},
		{"duplicate", "services:\n  s:\n    instances: [{address: 'a:1'}, {address: 'a:1'}]\n", "services.s.instances[1].address: a:1 is listed twice"},
		{"same address, two versions is fine", "services:\n  s:\n    instances: [{address: 'a:1', version: '1'}, {address: 'a:1', version: '2'}]\n", ""},
		{"health", "services:\n  s:\n    instances: [{address: 'a:1', health: sick}]\n", "services.s.instances[0].health"},
		{"lb kind", "services:\n  s:\n    loadBalancer: {kind: fastest}\n", "services.s.loadBalancer.kind"},
		{"ring without header", "services:\n  s:\n    loadBalancer: {kind: ring_hash}\n", "services.s.loadBalancer.hashHeader: empty"},
		{"hash header on round robin", "services:\n  s:\n    loadBalancer: {kind: round_robin, hashHeader: x}\n", "apply to ring_hash only"},
		{"unknown subset", "services:\n  s:\n    routes: [{route: [{subset: v9}]}]\n", `services.s.routes[0].route[0].subset: "v9" is not a subset of s`},
		{"unknown service", "services:\n  s:\n    routes: [{route: [{service: t}]}]\n", `destination service "t" is not in the file`},
		{"no destinations", "services:\n  s:\n    routes: [{name: r}]\n", "services.s.routes[0].route: empty"},
		{"two matchers", "services:\n  s:\n    routes: [{match: [{headers: {x: {exact: a, prefix: b}}}], route: [{}]}]\n", "services.s.routes[0].match[0].headers.x: set exactly one"},
		{"bad regex", "services:\n  s:\n    routes: [{match: [{path: {regex: '('}}], route: [{}]}]\n", "services.s.routes[0].match[0].path.regex"},
		{"present on path", "services:\n  s:\n    routes: [{match: [{path: {present: true}}], route: [{}]}]\n", "only headers can be tested for presence"},
		{"retryOn", "services:\n  s:\n    routes: [{route: [{}], retries: {attempts: 2, retryOn: sometimes}}]\n", "services.s.routes[0].retries.retryOn"},
		{"duration", "services:\n  s:\n    routes: [{route: [{}], timeout: soon}]\n", `"soon" is not a duration`},
		{"zero weights", "services:\n  s:\n    subsets: [{name: a}, {name: b}]\n    routes: [{route: [{subset: a}, {subset: b}]}]\n", "all weights are 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "registry.yaml")
			write(t, path, tt.content)
			r, err := file.New(path, file.WithLogger(quiet))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				r.Close()
				return
			}
			if err == nil {
				r.Close()
				t.Fatalf("New accepted a bad file, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("New error = %v\nwant the path and %q", err, tt.want)
			}
		})
	}
}

func TestRoutesSubsetsAndVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.yaml")
	write(t, path, `
services:
  greet.GreetService:
    instances:
      - {address: 127.0.0.1:1, version: 1.0.0, labels: {track: stable}}
      - {address: 127.0.0.1:2, version: 1.0.0, labels: {track: canary}}
      - {address: 127.0.0.1:3, version: 2.0.0}
    loadBalancer: {kind: ring_hash, hashHeader: x-user, minRingSize: 2048}
    subsets:
      - {name: stable, labels: {track: stable}}
      - {name: canary, labels: {track: canary}, loadBalancer: {kind: random}}
    routes:
      - name: testers
        match:
          - headers: {x-tester: {exact: "yes"}}
          - path: {prefix: /greet.GreetService/Beta}
        route: [{subset: canary}]
      - name: split
        match:
          - withoutHeaders: {x-legacy: {present: true}}
        route:
          - {subset: stable, weight: 90}
          - {subset: canary, weight: 10}
        timeout: 2s
        retries: {attempts: 2, perTryTimeout: 500ms, retryOn: "unavailable,connect-failure"}
`)
	r := open(t, path)
	s, err := next(t, watch(t, r, registry.Key{Interface: "greet.GreetService", Version: "1.0.0"}), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := ready(s, "greet.GreetService"); got != "127.0.0.1:1,127.0.0.1:2" {
		t.Errorf("version 1.0.0 endpoints = %s", got)
	}
	c, _ := s.Cluster(mesh.Destination{Service: "greet.GreetService", Subset: "canary"})
	if len(c.Ready()) != 1 || c.Ready()[0].Address != "127.0.0.1:2" || c.Policy().LoadBalancer.Kind != mesh.LBRandom {
		t.Errorf("canary subset = %+v", c)
	}
	all, _ := s.Cluster(mesh.Destination{Service: "greet.GreetService"})
	if ch := all.Policy().LoadBalancer.ConsistentHash; ch == nil || ch.Name != "x-user" || ch.MinRingSize != 2048 {
		t.Errorf("service policy = %+v", all.Policy().LoadBalancer)
	}
	if r := s.Match("/greet.GreetService/Greet", call.Attachments{"x-tester": "yes"}, nil); r == nil || r.Name != "testers" {
		t.Errorf("tester header: %+v", r)
	}
	if r := s.Match("/greet.GreetService/BetaGreet", nil, nil); r == nil || r.Name != "testers" {
		t.Errorf("beta path: %+v", r)
	}
	split := s.Match("/greet.GreetService/Greet", nil, nil)
	if split == nil || split.Name != "split" || split.Policy.Timeout != 2*time.Second || split.Policy.Retry.Attempts != 2 ||
		split.Policy.Retry.PerTryTimeout != 500*time.Millisecond || !split.Policy.Retry.On.HasCode(call.Unavailable) ||
		split.Destinations[0].Weight != 90 {
		t.Errorf("split route = %+v", split)
	}
	if r := s.Match("/greet.GreetService/Greet", call.Attachments{"x-legacy": "1"}, nil); r != nil {
		t.Errorf("withoutHeaders did not exclude: %+v", r)
	}
	s2, err := next(t, watch(t, r, registry.Key{Interface: "greet.GreetService", Version: "2.0.0"}), 5*time.Second)
	if err != nil || ready(s2, "greet.GreetService") != "127.0.0.1:3" {
		t.Errorf("version 2.0.0: %v, %v", s2, err)
	}
	s3, err := next(t, watch(t, r, registry.Key{Interface: "unknown.Service"}), 5*time.Second)
	if err != nil || ready(s3, "unknown.Service") != "" {
		t.Errorf("unknown service must be an empty state: %v, %v", s3, err)
	}
}

func TestRegisterAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "registry.yaml") // directory created on demand
	consumer := open(t, path)
	provider := open(t, path) // a second registry on the same file stands for another process
	w := watch(t, consumer, registry.Key{Interface: "greet.GreetService", Version: "1.0.0"})
	if s, err := next(t, w, 5*time.Second); err != nil || ready(s, "greet.GreetService") != "" {
		t.Fatalf("empty registry: %v, %v", s, err)
	}
	ctx := context.Background()
	inst := registry.Instance{Key: registry.Key{Interface: "greet.GreetService", Version: "1.0.0"}, Address: "127.0.0.1:50051", Labels: map[string]string{"zone": "a"}}
	if err := provider.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	s, err := next(t, w, 5*time.Second)
	if err != nil || ready(s, "greet.GreetService") != "127.0.0.1:50051" {
		t.Fatalf("after Register: %v, %v", s, err)
	}
	if err := provider.Deregister(ctx, inst); err != nil {
		t.Fatal(err)
	}
	s, err = next(t, w, 5*time.Second)
	if err != nil || ready(s, "greet.GreetService") != "" {
		t.Fatalf("after Deregister: %v, %v", ready(s, "greet.GreetService"), err)
	}
	if err := provider.Register(ctx, registry.Instance{Key: registry.Key{Interface: "x"}, Address: "nohost"}); err == nil || !strings.Contains(err.Error(), "address") {
		t.Errorf("Register with a bad address: %v", err)
	}
}

func TestConcurrentRegistersAllLand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.yaml")
	regs := []*file.Registry{open(t, path), open(t, path), open(t, path)}
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst := registry.Instance{Key: registry.Key{Interface: "greet.GreetService"}, Address: fmt.Sprintf("127.0.0.1:%d", 1000+i)}
			if err := regs[i%3].Register(context.Background(), inst); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := regs[0].Reload(); err != nil {
		t.Fatal(err)
	}
	s, err := next(t, watch(t, regs[0], registry.Key{Interface: "greet.GreetService"}), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Cluster(mesh.Destination{Service: "greet.GreetService"})
	if len(c.Endpoints()) != 30 {
		t.Errorf("%d endpoints after 30 concurrent registrations from 3 registries, want 30", len(c.Endpoints()))
	}
}

func TestCloseEndsWatchers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.yaml")
	r, err := file.New(path, file.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := r.Watch(context.Background(), registry.Key{Interface: "s"})
	if _, err := next(t, w, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(10 * time.Millisecond); r.Close() }()
	if _, err := next(t, w, 5*time.Second); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	if err := r.Register(context.Background(), registry.Instance{Key: registry.Key{Interface: "s"}, Address: "a:1"}); err == nil {
		t.Error("Register after Close succeeded")
	}
}

func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run a short-lived process: %v", err)
	}
	return cmd.Process.Pid
}

func TestInstancesOfExitedProcessesAreDropped(t *testing.T) {
	host, _ := os.Hostname()
	dead := deadPID(t)
	path := filepath.Join(t.TempDir(), "registry.yaml")
	write(t, path, fmt.Sprintf(`
services:
  greet.GreetService:
    instances:
      - {address: 127.0.0.1:1, owner: {host: %q, pid: %d}}
      - {address: 127.0.0.1:2, owner: {host: %q, pid: %d}}
      - {address: 127.0.0.1:3, owner: {host: other-host, pid: %d}}
      - {address: 127.0.0.1:4}
`, host, os.Getpid(), host, dead, dead))
	r := open(t, path)
	s, err := next(t, watch(t, r, registry.Key{Interface: "greet.GreetService"}), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Alive here, dead here (dropped), unknown elsewhere, no owner.
	if got := ready(s, "greet.GreetService"); got != "127.0.0.1:1,127.0.0.1:3,127.0.0.1:4" {
		t.Errorf("endpoints = %s, want the exited process's instance dropped", got)
	}
	// Register stamps the owner and prunes the dead entry from the file.
	if err := r.Register(context.Background(), registry.Instance{Key: registry.Key{Interface: "greet.GreetService"}, Address: "127.0.0.1:5"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "127.0.0.1:2") || !strings.Contains(string(data), fmt.Sprintf("pid: %d", os.Getpid())) {
		t.Errorf("file after Register:\n%s", data)
	}
}

func TestLivenessCheckWakesWatchers(t *testing.T) {
	host, _ := os.Hostname()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a process: %v", err)
	}
	path := filepath.Join(t.TempDir(), "registry.yaml")
	write(t, path, fmt.Sprintf("services:\n  s:\n    instances:\n      - {address: '127.0.0.1:1', owner: {host: %q, pid: %d}}\n      - {address: '127.0.0.1:2'}\n", host, cmd.Process.Pid))
	r, err := file.New(path, file.WithLogger(quiet), file.WithLivenessInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := watch(t, r, registry.Key{Interface: "s"})
	if s, err := next(t, w, 5*time.Second); err != nil || ready(s, "s") != "127.0.0.1:1,127.0.0.1:2" {
		t.Fatalf("while alive: %v, %v", s, err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	s, err := next(t, w, 5*time.Second)
	if err != nil || ready(s, "s") != "127.0.0.1:2" {
		t.Fatalf("after the owner died: %v, %v", s, err)
	}
}

// TestWriteRightAfterStartIsSeen: a write that lands right after New's
// first read (a provider registering while a consumer starts) reaches the
// watchers. The old New read the file before it watched the directory, so
// such a write was never seen: the helloworld sample's client, started
// beside its server, waited for a provider that was in the file.
func TestWriteRightAfterStartIsSeen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.yaml")
	defer file.SetFirstReadHook(func(p string) { write(t, p, one) })()
	r := open(t, path)
	w := watch(t, r, registry.Key{Interface: "greet.GreetService"})
	for {
		s, err := next(t, w, 5*time.Second)
		if err != nil {
			t.Fatalf("the write right after the first read never reached the watcher: %v", err)
		}
		if ready(s, "greet.GreetService") == "127.0.0.1:50051" {
			return
		}
	}
}
