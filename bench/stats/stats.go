// Package stats summarises latency samples the way Shoal's benchmark reports
// them: nearest-rank percentiles, throughput, and ratios between contenders.
package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Summary describes one measured run.
type Summary struct {
	Count    int
	Elapsed  time.Duration
	Min, Max time.Duration
	P50, P90 time.Duration
	P99      time.Duration
	P999     time.Duration
	QPS      float64
}

// Summarize computes a Summary of latency samples collected over elapsed.
// It sorts samples in place. It fails on an empty sample or a non-positive
// elapsed time, since neither yields a meaningful figure.
func Summarize(samples []time.Duration, elapsed time.Duration) (Summary, error) {
	if len(samples) == 0 {
		return Summary{}, errors.New("stats: no samples; the run made no successful call")
	}
	if elapsed <= 0 {
		return Summary{}, fmt.Errorf("stats: elapsed time %v is not positive", elapsed)
	}
	slices.Sort(samples)
	return Summary{
		Count:   len(samples),
		Elapsed: elapsed,
		Min:     samples[0],
		Max:     samples[len(samples)-1],
		P50:     Percentile(samples, 50),
		P90:     Percentile(samples, 90),
		P99:     Percentile(samples, 99),
		P999:    Percentile(samples, 99.9),
		QPS:     float64(len(samples)) / elapsed.Seconds(),
	}, nil
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted samples: the smallest sample such that at least p percent of all
// samples are less than or equal to it.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Median returns the median of xs (the mean of the two middle values for an
// even count), used to combine repeated, interleaved runs. It does not modify xs.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// String formats the summary on one line, in microseconds.
func (s Summary) String() string {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return fmt.Sprintf("n=%d qps=%.0f p50=%.1fus p90=%.1fus p99=%.1fus p99.9=%.1fus max=%.1fus",
		s.Count, s.QPS, us(s.P50), us(s.P90), us(s.P99), us(s.P999), us(s.Max))
}
