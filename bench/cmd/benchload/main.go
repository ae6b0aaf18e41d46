// Command benchload drives a bounded load of greet.GreetService/Greet calls
// against a target and prints one JSON object with the latency summary.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/shoalmesh/shoal/bench/impl"
	"github.com/shoalmesh/shoal/bench/stats"
)

// Result is benchload's output, read by shoalbench.
type Result struct {
	Impl        string  `json:"impl"`
	Concurrency int     `json:"concurrency"`
	Payload     int     `json:"payload"`
	Calls       int     `json:"calls"`
	Errors      int     `json:"errors"`
	QPS         float64 `json:"qps"`
	P50us       float64 `json:"p50_us"`
	P90us       float64 `json:"p90_us"`
	P99us       float64 `json:"p99_us"`
	P999us      float64 `json:"p999_us"`
	MaxUS       float64 `json:"max_us"`
	// AllCalls counts every call of the process (warm-up included) and
	// CPUus its user+system CPU time, for the CPU cost of a call.
	AllCalls int     `json:"all_calls"`
	CPUus    float64 `json:"cpu_us"`
}

func main() {
	name := flag.String("impl", "grpc-go", "client implementation")
	target := flag.String("target", "", "host:port of the server (loopback)")
	conc := flag.Int("c", 1, "concurrent callers")
	dur := flag.Duration("duration", 5*time.Second, "measured duration")
	warm := flag.Duration("warmup", time.Second, "warm-up duration (not measured)")
	maxCalls := flag.Int("max-calls", 10_000_000, "upper bound of calls per caller")
	payload := flag.Int("payload", 64, "payload bytes per request (echoed back)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "benchload: -target is required")
		os.Exit(2)
	}
	stopProfile, err := impl.StartCPUProfile(*cpuProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchload:", err)
		os.Exit(2)
	}
	err = run(*name, *target, *conc, *dur, *warm, *maxCalls, *payload)
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchload:", err)
		os.Exit(1)
	}
}

func run(name, target string, conc int, dur, warm time.Duration, maxCalls, payload int) error {
	im, err := impl.Lookup(name)
	if err != nil {
		return err
	}
	c, err := im.Dial(target)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := impl.RunLoad(context.Background(), c, impl.LoadConfig{
		Concurrency: conc, Warmup: warm, Duration: dur, MaxCalls: maxCalls, Payload: payload,
	})
	if err != nil {
		return err
	}
	s, err := stats.Summarize(res.Latencies, res.Elapsed)
	if err != nil {
		return err
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return json.NewEncoder(os.Stdout).Encode(Result{
		Impl: name, Concurrency: conc, Payload: payload, Calls: s.Count, Errors: res.Errors, QPS: s.QPS,
		P50us: us(s.P50), P90us: us(s.P90), P99us: us(s.P99), P999us: us(s.P999), MaxUS: us(s.Max),
		AllCalls: res.Calls + res.WarmupCalls, CPUus: us(cpu),
	})
}
