// Command dubbogo-benchload is bench's benchload for dubbo-go v3.3.2: a
// bounded load of greet.GreetService/Greet calls, printed as one JSON object
// with the latency summary. Flags and output as benchload's.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/shoalmesh/shoal/interop/dubbogo/bench"
	"github.com/shoalmesh/shoal/interop/dubbogo/driver"
)

func main() {
	name := flag.String("impl", "dubbo-go", "client implementation (only dubbo-go)")
	target := flag.String("target", "", "host:port of the server (loopback)")
	conc := flag.Int("c", 1, "concurrent callers")
	dur := flag.Duration("duration", 5*time.Second, "measured duration")
	warm := flag.Duration("warmup", time.Second, "warm-up duration (not measured)")
	maxCalls := flag.Int("max-calls", 10_000_000, "upper bound of calls per caller")
	payload := flag.Int("payload", 64, "payload bytes per request (echoed back)")
	flag.Parse()
	if *target == "" || *name != "dubbo-go" || *conc < 1 || *dur <= 0 || *maxCalls < 1 {
		fmt.Fprintln(os.Stderr, "dubbogo-benchload: need -impl dubbo-go, -target, -c >= 1, -duration > 0, -max-calls >= 1")
		os.Exit(2)
	}
	out, err := driver.ProtocolOutput()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dubbogo-benchload:", err)
		os.Exit(1)
	}
	c, err := bench.Dial(*target)
	if err == nil {
		var res bench.Result
		res, err = bench.Load(context.Background(), c, *conc, *payload, *maxCalls, *warm, *dur)
		if err == nil {
			err = json.NewEncoder(out).Encode(res)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dubbogo-benchload:", err)
		os.Exit(1)
	}
}
