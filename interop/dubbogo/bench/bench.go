// Package bench is dubbo-go v3.3.2 as a contender in Shoal's benchmark
// (bench/cmd/shoalbench): an echo server of greet.GreetService/Greet and a
// bounded load loop with the same semantics, flags and JSON output as bench's
// benchsrv and benchload, which this module cannot import (see go.mod).
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"dubbo.apache.org/dubbo-go/v3/client"
	_ "dubbo.apache.org/dubbo-go/v3/imports" // dubbo-go's extensions, as its users import them
	"dubbo.apache.org/dubbo-go/v3/protocol"
	tri "dubbo.apache.org/dubbo-go/v3/protocol/triple/triple_protocol"
	"dubbo.apache.org/dubbo-go/v3/server"

	"github.com/shoalmesh/shoal/interop/dubbogo/greet"
	"github.com/shoalmesh/shoal/interop/dubbogo/greet/greettriple"
)

// Echo answers Greet with the request's payload.
type Echo struct{}

// Greet implements greettriple.Handler.
func (Echo) Greet(_ context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	return &greet.GreetResponse{Payload: req.GetPayload()}, nil
}

var errUnary = tri.NewError(tri.CodeUnimplemented, errors.New("the benchmark serves Greet only"))

// GreetServerStream implements greettriple.Handler.
func (Echo) GreetServerStream(context.Context, *greet.GreetRequest, *tri.ServerStream) error {
	return errUnary
}

// GreetClientStream implements greettriple.Handler.
func (Echo) GreetClientStream(context.Context, *tri.ClientStream) (*greet.GreetResponse, error) {
	return nil, errUnary
}

// GreetBidiStream implements greettriple.Handler.
func (Echo) GreetBidiStream(context.Context, *tri.BidiStream) error { return errUnary }

// Serve serves the echo on a loopback port until ctx ends; ready gets the
// address once it accepts calls.
func Serve(ctx context.Context, addr string, ready func(string)) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if port == "0" { // dubbo-go takes a port, not a listener: pick one
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		_, port, _ = net.SplitHostPort(l.Addr().String())
		_ = l.Close()
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	srv, err := server.NewServer(server.WithServerProtocol(protocol.WithTriple(), protocol.WithIp(host), protocol.WithPort(p)))
	if err != nil {
		return err
	}
	if err := greettriple.Register(srv, Echo{}); err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeContext(ctx) }()
	bound := net.JoinHostPort(host, port)
	for range 200 {
		select {
		case err := <-served:
			return fmt.Errorf("the dubbo-go server stopped before serving: %w", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", bound, 100*time.Millisecond); err == nil {
			_ = c.Close()
			ready(bound)
			if err := <-served; err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after 10s", bound)
}

// Caller makes echo calls with dubbo-go's client (gRPC over HTTP/2, the
// default of its Triple protocol).
type Caller struct{ c *greettriple.Client }

// Dial connects to target (host:port).
func Dial(target string) (*Caller, error) {
	cli, err := client.NewClient(client.WithClientProtocolTriple(), client.WithClientClusterFailFast())
	if err != nil {
		return nil, err
	}
	c, err := greettriple.NewClient(cli, client.WithURL("tri://"+target), client.WithRequestTimeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	return &Caller{c: c}, nil
}

var errEcho = errors.New("bench: the server did not echo the payload")

// Call makes one unary call carrying payload and checks the echo.
func (c *Caller) Call(ctx context.Context, payload []byte) error {
	resp, err := c.c.Greet(ctx, &greet.GreetRequest{Payload: payload})
	if err != nil {
		return err
	}
	if !bytes.Equal(resp.GetPayload(), payload) {
		return errEcho
	}
	return nil
}

// Result is benchload's JSON output.
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
}

// Load drives c with conc workers: a warm-up whose calls are not recorded,
// then the measured phase. It stops at dur or maxCalls per worker.
func Load(ctx context.Context, c *Caller, conc, payloadSize, maxCalls int, warm, dur time.Duration) (Result, error) {
	payload := make([]byte, payloadSize)
	for i := range payload {
		payload[i] = byte(i)
	}
	if warm > 0 {
		_ = phase(ctx, c, conc, maxCalls, payload, warm, false) // warm-up: not recorded
	}
	r := phase(ctx, c, conc, maxCalls, payload, dur, true)
	lat := r.lat
	if len(lat) == 0 {
		return Result{}, fmt.Errorf("bench: every call failed: %w", r.first)
	}
	slices.Sort(lat)
	us := func(p float64) float64 {
		rank := min(max(int(math.Ceil(p/100*float64(len(lat)))), 1), len(lat))
		return float64(lat[rank-1]) / float64(time.Microsecond)
	}
	return Result{
		Impl: "dubbo-go", Concurrency: conc, Payload: payloadSize, Calls: len(lat), Errors: r.errs,
		QPS: float64(len(lat)) / r.elapsed.Seconds(), P50us: us(50), P90us: us(90), P99us: us(99), P999us: us(99.9), MaxUS: us(100),
	}, nil
}

// run is the raw outcome of one phase.
type run struct {
	lat     []time.Duration
	errs    int
	first   error
	elapsed time.Duration
}

func phase(ctx context.Context, c *Caller, conc, maxCalls int, payload []byte, d time.Duration, record bool) run {
	workers := make([]run, conc)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			me := &workers[w]
			for n := 0; n < maxCalls && ctx.Err() == nil; n++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := c.Call(cctx, payload)
				cancel()
				switch {
				case err != nil:
					me.errs++
					if me.first == nil {
						me.first = err
					}
				case record:
					me.lat = append(me.lat, time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	total := run{elapsed: time.Since(start)}
	for _, w := range workers {
		total.lat = append(total.lat, w.lat...)
		total.errs += w.errs
		if total.first == nil {
			total.first = w.first
		}
	}
	return total
}
