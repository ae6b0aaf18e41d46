package istiometrics_test

import (
	"context"
	"encoding/json"
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

	"github.com/shoalmesh/shoal/observability/admin"
	"github.com/shoalmesh/shoal/observability/internal/httpget"
	"github.com/shoalmesh/shoal/observability/istiometrics"
)

// TestPrometheusEndToEnd runs a real Prometheus server (Debian's
// prometheus package, installed by scripts/deps.sh) on loopback, scraping
// the admin endpoints of a consumer and a provider. After N calls, PromQL
// over the source side and over the destination side counts the same N.
func TestPrometheusEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus server; run without -short")
	}
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("no prometheus binary: %v; run make deps (Debian package prometheus)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := startApps(t, true)
	var targets []string
	for _, m := range []*istiometrics.Metrics{a.consumerMetrics, a.providerMetrics} {
		s, err := admin.New(admin.WithAddress("127.0.0.1:0"), admin.WithGatherer(m.Registry()))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
		targets = append(targets, strconv.Quote(s.Addr().String()))
	}
	const n = 250
	for i := range n {
		if err := a.unary(ctx, fmt.Sprint("call ", i)); err != nil {
			t.Fatal(err)
		}
	}

	promAddr := startPrometheus(ctx, t, bin, targets)
	// Wait, boundedly, for a scrape that has all calls; then compare.
	queries := map[string]string{
		"source":      `sum(istio_requests_total{reporter="source"})`,
		"destination": `sum(istio_requests_total{reporter="destination"})`,
		"edge":        `sum(istio_requests_total{reporter="destination",source_workload="frontend-v1",destination_workload="echo-v2",response_code="200",grpc_response_status="0"})`,
	}
	got := map[string]float64{}
	for attempt := 0; attempt < 120; attempt++ {
		for name, q := range queries {
			got[name] = query(ctx, t, promAddr, q)
		}
		if got["source"] == n && got["destination"] == n && got["edge"] == n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus never reported %d calls: %v", n, got)
		case <-time.After(500 * time.Millisecond):
		}
	}
	for name := range queries {
		if got[name] != n {
			t.Errorf("%s: PromQL %s = %v, want %d", name, queries[name], got[name], n)
		}
	}
	if buckets := query(ctx, t, promAddr, `count(istio_request_duration_milliseconds_bucket{reporter="source"})`); buckets != float64(len(istiometrics.DurationBuckets)+1) {
		t.Errorf("source duration buckets = %v, want Envoy's %d plus +Inf", buckets, len(istiometrics.DurationBuckets))
	}
}

// startPrometheus runs the server on a free loopback port, scraping
// targets every second, and returns its address.
func startPrometheus(ctx context.Context, t *testing.T, bin string, targets []string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: shoal\n    static_configs:\n      - targets: [%s]\n", strings.Join(targets, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	for attempt := 0; ; attempt++ {
		if code, _, _ := httpget.Get(ctx, "http://"+addr+"/-/ready"); code == http.StatusOK {
			return addr
		}
		if attempt == 100 {
			t.Fatalf("prometheus at %s never became ready", addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// query runs an instant PromQL query; an empty result is 0.
func query(ctx context.Context, t *testing.T, addr, q string) float64 {
	t.Helper()
	code, body, err := httpget.Get(ctx, "http://"+addr+"/api/v1/query?query="+url.QueryEscape(q))
	if err != nil || code != http.StatusOK {
		t.Fatalf("query %s: HTTP %d, %v: %s", q, code, err, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("query %s: %v: %s", q, err, body)
	}
	if len(r.Data.Result) == 0 {
		return 0
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("query %s: value %q: %v", q, s, err)
	}
	return v
}
