package impl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// LoadConfig bounds one load run. Every run stops by itself: at Duration, or
// at MaxCalls per worker, whichever comes first.
type LoadConfig struct {
	Concurrency int
	Warmup      time.Duration
	Duration    time.Duration
	MaxCalls    int
	Payload     int
	CallTimeout time.Duration
}

// LoadResult is the raw outcome of a load run.
type LoadResult struct {
	Latencies []time.Duration
	Errors    int
	FirstErr  error
	Elapsed   time.Duration
	// Calls counts every call made in the measured phase (failed ones
	// too); WarmupCalls those of the warm-up, for per-call CPU figures.
	Calls, WarmupCalls int
}

// RunLoad drives c with cfg.Concurrency workers: a warm-up phase whose calls
// are not recorded, then the measured phase.
func RunLoad(ctx context.Context, c Caller, cfg LoadConfig) (LoadResult, error) {
	if cfg.Concurrency < 1 || cfg.Duration <= 0 || cfg.MaxCalls < 1 {
		return LoadResult{}, fmt.Errorf("impl: bad load config %+v: need concurrency >= 1, duration > 0, max calls >= 1", cfg)
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	payload := make([]byte, cfg.Payload)
	for i := range payload {
		payload[i] = byte(i)
	}
	warmCalls := 0
	if cfg.Warmup > 0 {
		w, err := phase(ctx, c, cfg, payload, cfg.Warmup, false)
		if err != nil {
			return LoadResult{}, fmt.Errorf("warm-up: %w", err)
		}
		warmCalls = w.Calls
	}
	res, err := phase(ctx, c, cfg, payload, cfg.Duration, true)
	res.WarmupCalls = warmCalls
	return res, err
}

func phase(ctx context.Context, c Caller, cfg LoadConfig, payload []byte, d time.Duration, record bool) (LoadResult, error) {
	type worker struct {
		lat   []time.Duration
		errs  int
		calls int
		first error
	}
	workers := make([]worker, cfg.Concurrency)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			me := &workers[w]
			if record {
				me.lat = make([]time.Duration, 0, 1<<14)
			}
			for n := 0; n < cfg.MaxCalls && ctx.Err() == nil; n++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				cctx, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
				err := c.Call(cctx, payload)
				cancel()
				me.calls++
				if err != nil {
					me.errs++
					if me.first == nil {
						me.first = err
					}
					continue
				}
				if record {
					me.lat = append(me.lat, time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	res := LoadResult{Elapsed: time.Since(start)}
	for _, w := range workers {
		res.Latencies = append(res.Latencies, w.lat...)
		res.Errors += w.errs
		res.Calls += w.calls
		if res.FirstErr == nil {
			res.FirstErr = w.first
		}
	}
	if res.Errors > 0 && len(res.Latencies) == 0 && record {
		return res, errors.Join(errors.New("impl: every call failed"), res.FirstErr)
	}
	return res, nil
}
