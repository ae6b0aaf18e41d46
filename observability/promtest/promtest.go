package promtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/observability/internal/httpget"
)

// ScrapeInterval is how often the server scrapes its targets.
const ScrapeInterval = time.Second

// Server is a Prometheus server a test started.
type Server struct {
	addr string
}

// Start runs prometheus on a free loopback port, scraping targets
// ("host:port", /metrics) every ScrapeInterval, and returns once it is
// ready. It stops the server when the test ends and prints its log if the
// test failed. It fails the test when the binary is missing (run make deps)
// or the server does not start.
func Start(ctx context.Context, t testing.TB, targets ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("promtest: no prometheus binary: %v; run make deps (Debian package prometheus)", err)
	}
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: %[1]s\n  scrape_timeout: %[1]s\nscrape_configs:\n  - job_name: shoal\n    static_configs:\n      - targets: [%[2]s]\n",
		ScrapeInterval, strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// A port found free may be taken before prometheus binds it (other
	// tests run in parallel on this machine): then it exits, and we retry.
	var errs []error
	for attempt := range 3 {
		addr, err := freeLoopbackAddr()
		if err != nil {
			t.Fatal(err)
		}
		err = start(ctx, t, bin, cfgPath, filepath.Join(dir, fmt.Sprintf("data-%d", attempt)), addr, filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt)))
		if err == nil {
			return &Server{addr: addr}
		}
		errs = append(errs, err)
	}
	t.Fatalf("promtest: prometheus did not start: %v", errors.Join(errs...))
	return nil
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// start runs one prometheus process and waits until it is ready or exited.
func start(ctx context.Context, t testing.TB, bin, cfgPath, dataDir, addr, logPath string) error {
	logf, err := os.Create(logPath) //nolint:gosec // a path in the test's temporary directory
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+dataDir, "--web.listen-address="+addr) //nolint:gosec // the binary found on PATH, arguments built here
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error // set before exited closes
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logf.Close()
	}
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for attempt := 0; ; attempt++ {
		if code, _, _ := httpget.Get(ctx, "http://"+addr+"/-/ready"); code == http.StatusOK {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					b, _ := os.ReadFile(logPath) //nolint:gosec // written by this package
					t.Logf("prometheus log (%s):\n%s", addr, b)
				}
			})
			return nil
		}
		select {
		case <-exited:
			_ = logf.Close()
			b, _ := os.ReadFile(logPath) //nolint:gosec // written by this package
			return fmt.Errorf("prometheus on %s exited (%w): %s", addr, waitErr, lastLines(string(b), 5))
		case <-ctx.Done():
			stop()
			return fmt.Errorf("prometheus on %s not ready: %w", addr, ctx.Err())
		case <-ticker.C:
		}
		if attempt == 300 { // 30 s
			stop()
			return fmt.Errorf("prometheus on %s not ready after 30 s", addr)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Sample is one series of an instant query's answer.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query runs an instant PromQL query and returns its samples.
func (s *Server) Query(ctx context.Context, q string) ([]Sample, error) {
	code, body, err := httpget.Get(ctx, "http://"+s.addr+"/api/v1/query?query="+url.QueryEscape(q))
	if err != nil {
		return nil, fmt.Errorf("promtest: query %s: %w", q, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("promtest: query %s: HTTP %d: %s", q, code, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("promtest: query %s: %w: %s", q, err, body)
	}
	out := make([]Sample, 0, len(r.Data.Result))
	for _, res := range r.Data.Result {
		str, _ := res.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("promtest: query %s: value %q: %w", q, str, err)
		}
		out = append(out, Sample{Labels: res.Metric, Value: v})
	}
	return out, nil
}

// Value runs a query whose answer is at most one sample and returns its
// value; an empty answer is 0.
func (s *Server) Value(ctx context.Context, q string) (float64, error) {
	samples, err := s.Query(ctx, q)
	if err != nil {
		return 0, err
	}
	switch len(samples) {
	case 0:
		return 0, nil
	case 1:
		return samples[0].Value, nil
	}
	return 0, fmt.Errorf("promtest: query %s: %d samples, want at most one", q, len(samples))
}

// ByLabel returns the samples' values keyed by the value of one label, as
// for the answer of `sum by (label) (...)`.
func ByLabel(samples []Sample, label string) map[string]float64 {
	out := make(map[string]float64, len(samples))
	for _, s := range samples {
		out[s.Labels[label]] += s.Value
	}
	return out
}

// Await evaluates ok once per scrape interval until it reports true, and
// fails the test when ctx ends or 120 scrapes pass first; describe says
// what was seen last, for the failure message.
func (s *Server) Await(ctx context.Context, t testing.TB, ok func(ctx context.Context) (bool, error), describe func() string) {
	t.Helper()
	ticker := time.NewTicker(ScrapeInterval / 2)
	defer ticker.Stop()
	for attempt := 0; ; attempt++ {
		done, err := ok(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		if attempt == 240 {
			t.Fatalf("promtest: Prometheus never showed what the test waits for; last seen: %s", describe())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("promtest: %v while waiting; last seen: %s", ctx.Err(), describe())
		case <-ticker.C:
		}
	}
}
