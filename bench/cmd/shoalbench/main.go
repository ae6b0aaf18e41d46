// Command shoalbench measures RPC stacks side by side on this machine: each
// contender's server and load generator run as separate processes pinned to
// GOMAXPROCS=1, contenders are interleaved and rotated across rounds, and the
// report gives medians over rounds (with the lowest and highest p50) and
// ratios against the loopback floor (tcp-floor, a raw TCP ping-pong run in
// the same rounds) and against plain grpc-go.
//
//	go run ./cmd/shoalbench -contenders=tcp-floor,grpc-go,shoal,sidecar-pair -rounds=3
//
// The grpc-go-tls and shoal-mtls contenders call over mutual TLS with
// certificates of a test CA shaped as istiod issues them (P-256, SPIFFE URI
// SAN only), both stacks with the same TLS configurations from
// registry-istio/identity; their ratios are against grpc-go-tls.
//
// The sidecar-pair contender puts two HAProxy HTTP/2 proxies (one per side,
// as Envoy sidecars would be) between a grpc-go client and server. The
// dubbo-go contender (dubbo-go v3.3.2's Triple client and server) is built
// from the interop/dubbogo module with GOWORK=off, since its dependencies
// must stay out of the workspace.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoalmesh/shoal/bench/impl"
	"github.com/shoalmesh/shoal/bench/stats"
)

// contender is one stack under test.
type contender struct {
	name    string
	server  string // benchsrv -impl
	client  string // benchload -impl
	sidecar bool   // two HAProxy hops in between
	// dir, when set, is a module outside the workspace (relative to the
	// bench module) whose cmd/<dir base>-benchsrv and -benchload stand in
	// for benchsrv and benchload.
	dir string
	// tls contenders use mutual TLS with certificates of a test CA
	// (impl.WriteTestCerts) and are compared with grpc-go-tls.
	tls bool
}

// baseline is the contender c's ratios are against.
func (c contender) baseline() string {
	if c.tls {
		return "grpc-go-tls"
	}
	return "grpc-go"
}

// binaries are the server and load commands of c in bin.
func (c contender) binaries(bin string) (srv, load string) {
	if c.dir == "" {
		return filepath.Join(bin, "benchsrv"), filepath.Join(bin, "benchload")
	}
	return filepath.Join(bin, c.name+"-benchsrv"), filepath.Join(bin, c.name+"-benchload")
}

var known = map[string]contender{
	"grpc-go":      {name: "grpc-go", server: "grpc-go", client: "grpc-go"},
	"shoal":        {name: "shoal", server: "shoal", client: "shoal"},
	"dubbo-go":     {name: "dubbo-go", server: "dubbo-go", client: "dubbo-go", dir: "../interop/dubbogo"},
	"sidecar-pair": {name: "sidecar-pair", server: "grpc-go", client: "grpc-go", sidecar: true},
	"grpc-go-tls":  {name: "grpc-go-tls", server: "grpc-go-tls", client: "grpc-go-tls", tls: true},
	"shoal-mtls":   {name: "shoal-mtls", server: "shoal-mtls", client: "shoal-mtls", tls: true},
	// The loopback floor: a raw TCP ping-pong, no RPC stack (bench/impl/tcpfloor.go).
	"tcp-floor": {name: "tcp-floor", server: "tcp-floor", client: "tcp-floor"},
}

type result struct {
	Contender   string  `json:"contender"`
	Round       int     `json:"round"`
	Concurrency int     `json:"concurrency"`
	Payload     int     `json:"payload"`
	Calls       int     `json:"calls"`
	Errors      int     `json:"errors"`
	QPS         float64 `json:"qps"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
	// CPUPerCall is the user+system CPU of the load and server processes
	// (not of sidecars) per call, warm-up included, in microseconds.
	CPUPerCall float64 `json:"cpu_us_per_call"`
}

func main() {
	names := flag.String("contenders", "grpc-go,sidecar-pair", "comma-separated contenders: "+strings.Join(sortedKeys(), ", "))
	rounds := flag.Int("rounds", 3, "interleaved rounds (medians are reported)")
	dur := flag.Duration("duration", 3*time.Second, "measured duration per run")
	warm := flag.Duration("warmup", 500*time.Millisecond, "warm-up per run")
	concs := flag.String("c", "1,64", "comma-separated concurrency levels")
	payloads := flag.String("payloads", "64", "comma-separated payload sizes in bytes")
	out := flag.String("json", "", "also write every run as JSON lines to this file")
	flag.Parse()

	if err := run(*names, *rounds, *dur, *warm, *concs, *payloads, *out); err != nil {
		fmt.Fprintln(os.Stderr, "shoalbench:", err)
		os.Exit(1)
	}
}

func run(names string, rounds int, dur, warm time.Duration, concList, payloadList, out string) error {
	var cs []contender
	for n := range strings.SplitSeq(names, ",") {
		c, ok := known[strings.TrimSpace(n)]
		if !ok {
			return fmt.Errorf("unknown contender %q; known: %s", n, strings.Join(sortedKeys(), ", "))
		}
		cs = append(cs, c)
	}
	concs, err := ints(concList)
	if err != nil {
		return fmt.Errorf("-c: %w", err)
	}
	sizes, err := ints(payloadList)
	if err != nil {
		return fmt.Errorf("-payloads: %w", err)
	}
	if rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	bin, err := os.MkdirTemp("", "shoalbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	fmt.Fprintln(os.Stderr, "building benchsrv and benchload...")
	for _, cmd := range []string{"benchsrv", "benchload"} {
		b := exec.Command("go", "build", "-o", filepath.Join(bin, cmd), "./cmd/"+cmd)
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("build %s (run shoalbench from the bench module directory): %w", cmd, err)
		}
	}
	for _, c := range cs {
		if c.dir == "" {
			continue
		}
		fmt.Fprintf(os.Stderr, "building the %s contender in %s (GOWORK=off; the first build takes minutes)...\n", c.name, c.dir)
		prefix := filepath.Base(c.dir)
		srv, load := c.binaries(bin)
		for cmd, out := range map[string]string{prefix + "-benchsrv": srv, prefix + "-benchload": load} {
			b := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/"+cmd)
			b.Dir = c.dir
			b.Env = append(os.Environ(), "GOWORK=off")
			b.Stdout, b.Stderr = os.Stderr, os.Stderr
			if err := b.Run(); err != nil {
				return fmt.Errorf("build %s in %s: %w", cmd, c.dir, err)
			}
		}
	}

	if slices.ContainsFunc(cs, func(c contender) bool { return c.tls }) {
		certs := filepath.Join(bin, "certs")
		if err := impl.WriteTestCerts(certs); err != nil {
			return fmt.Errorf("test certificates: %w", err)
		}
		// Inherited by every server and load process.
		if err := os.Setenv(impl.EnvCertDir, certs); err != nil {
			return err
		}
	}
	var all []result
	total := rounds * len(concs) * len(sizes) * len(cs)
	step := 0
	for r := range rounds {
		for _, size := range sizes {
			for _, conc := range concs {
				// Rotate the order every round so no contender always runs first.
				order := slices.Clone(cs)
				k := r % len(order)
				order = append(order[k:], order[:k]...)
				for _, c := range order {
					step++
					fmt.Fprintf(os.Stderr, "[%d/%d] round %d %s c=%d payload=%dB\n", step, total, r+1, c.name, conc, size)
					res, err := measure(bin, c, conc, size, dur, warm)
					if err != nil {
						return fmt.Errorf("%s c=%d payload=%d: %w", c.name, conc, size, err)
					}
					res.Round = r + 1
					all = append(all, res)
				}
			}
		}
	}
	if out != "" {
		if err := writeJSON(out, all); err != nil {
			return err
		}
	}
	report(os.Stdout, cs, concs, sizes, all)
	return nil
}

func measure(bin string, c contender, conc, size int, dur, warm time.Duration) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dur+warm+2*time.Minute)
	defer cancel()
	srvBin, loadBin := c.binaries(bin)
	addr, stopSrv, err := startServer(ctx, srvBin, c.server)
	if err != nil {
		return result{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			stopSrv()
		}
	}()
	target := addr
	if c.sidecar {
		target, err = startSidecars(ctx, addr)
		if err != nil {
			return result{}, err
		}
	}
	load := exec.CommandContext(ctx, loadBin, "-impl", c.client, "-target", target,
		"-c", strconv.Itoa(conc), "-payload", strconv.Itoa(size), "-duration", dur.String(), "-warmup", warm.String())
	load.Env = append(os.Environ(), "GOMAXPROCS=1")
	load.Stderr = os.Stderr
	outb, err := load.Output()
	if err != nil {
		return result{}, fmt.Errorf("benchload: %w", err)
	}
	var r struct {
		Calls    int     `json:"calls"`
		Errors   int     `json:"errors"`
		QPS      float64 `json:"qps"`
		P50us    float64 `json:"p50_us"`
		P99us    float64 `json:"p99_us"`
		AllCalls int     `json:"all_calls"`
		CPUus    float64 `json:"cpu_us"`
	}
	if err := json.Unmarshal(outb, &r); err != nil {
		return result{}, fmt.Errorf("benchload output %q: %w", outb, err)
	}
	stopped = true
	srvCPU := stopSrv()
	res := result{Contender: c.name, Concurrency: conc, Payload: size, Calls: r.Calls, Errors: r.Errors, QPS: r.QPS, P50us: r.P50us, P99us: r.P99us}
	if r.AllCalls > 0 {
		res.CPUPerCall = (r.CPUus + float64(srvCPU)/float64(time.Microsecond)) / float64(r.AllCalls)
	}
	return res, nil
}

// startServer runs a benchsrv binary and waits for its READY line.
// The stop function ends it and returns the CPU time it used.
func startServer(ctx context.Context, srvBin, name string) (string, func() time.Duration, error) {
	cmd := exec.CommandContext(ctx, srvBin, "-impl", name)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() time.Duration {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if cmd.ProcessState == nil {
			return 0
		}
		return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY ") {
		stop()
		return "", nil, fmt.Errorf("benchsrv -impl %s did not start (got %q): %w", name, line, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "READY ")), stop, nil
}

// startSidecars starts two HAProxy processes, one per side, each a single
// thread speaking HTTP/2 on both sides with pooled upstream connections:
// client -> out-proxy -> in-proxy -> server. They end with ctx.
func startSidecars(ctx context.Context, server string) (string, error) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		return "", errors.New("the sidecar-pair contender needs HAProxy: apt-get install haproxy (or make deps)")
	}
	inPort, err := freePort()
	if err != nil {
		return "", err
	}
	outPort, err := freePort()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "shoalbench-haproxy")
	if err != nil {
		return "", err
	}
	context.AfterFunc(ctx, func() { _ = os.RemoveAll(dir) })
	for _, hop := range []struct{ name, listen, upstream string }{
		{"in", "127.0.0.1:" + inPort, server},
		{"out", "127.0.0.1:" + outPort, "127.0.0.1:" + inPort},
	} {
		cfg := fmt.Sprintf(`global
	nbthread 1
	maxconn 4096
defaults
	mode http
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	http-reuse always
frontend %[1]s
	bind %[2]s proto h2
	default_backend %[1]s_upstream
backend %[1]s_upstream
	server upstream %[3]s proto h2
`, hop.name, hop.listen, hop.upstream)
		path := filepath.Join(dir, hop.name+".cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return "", err
		}
		cmd := exec.CommandContext(ctx, haproxy, "-db", "-f", path)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return "", fmt.Errorf("start haproxy: %w", err)
		}
		go func() { _ = cmd.Wait() }()
		if err := waitListening(ctx, hop.listen); err != nil {
			return "", fmt.Errorf("haproxy %s: %w", hop.name, err)
		}
	}
	return "127.0.0.1:" + outPort, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func waitListening(ctx context.Context, addr string) error {
	for range 100 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on %s after 5s", addr)
}

func report(w io.Writer, cs []contender, concs, sizes []int, all []result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contender\tc\tpayload\tp50 us\tp50 spread\tp99 us\tqps\tcpu us/call\tp50 vs floor\tbaseline\tp50 vs baseline\tqps vs baseline\tcpu vs baseline\terrors\t")
	for _, size := range sizes {
		for _, conc := range concs {
			// Medians first, so ratios do not depend on the contenders' order.
			type row struct {
				med    [4]float64 // p50, p99, qps, cpu per call
				lo, hi float64
				errs   int
			}
			rows := map[string]row{}
			for _, c := range cs {
				var p50, p99, qps, cpu []float64
				errs := 0
				for _, r := range all {
					if r.Contender == c.name && r.Concurrency == conc && r.Payload == size {
						p50, p99, qps, cpu = append(p50, r.P50us), append(p99, r.P99us), append(qps, r.QPS), append(cpu, r.CPUPerCall)
						errs += r.Errors
					}
				}
				rw := row{med: [4]float64{stats.Median(p50), stats.Median(p99), stats.Median(qps), stats.Median(cpu)}, errs: errs}
				if len(p50) > 0 {
					rw.lo, rw.hi = slices.Min(p50), slices.Max(p50)
				}
				rows[c.name] = rw
			}
			for _, c := range cs {
				m := rows[c.name]
				ratio := func(base string, i int) string {
					b, ok := rows[base]
					if !ok || b.med[i] == 0 {
						return "-"
					}
					return fmt.Sprintf("%.2fx", m.med[i]/b.med[i])
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f-%.1f\t%.1f\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t\n", c.name, conc, size,
					m.med[0], m.lo, m.hi, m.med[1], m.med[2], m.med[3],
					ratio("tcp-floor", 0), c.baseline(), ratio(c.baseline(), 0), ratio(c.baseline(), 2), ratio(c.baseline(), 3), m.errs)
			}
		}
	}
	_ = tw.Flush()
}

func writeJSON(path string, all []result) error {
	f, err := os.Create(path) //nolint:gosec // the user names the output file
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, r := range all {
		if err := enc.Encode(r); err != nil {
			_ = f.Close()
			return err
		}
	}
	return f.Close()
}

func ints(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a non-negative number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func sortedKeys() []string {
	ks := make([]string, 0, len(known))
	for k := range known {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
