package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	// 1..100 microseconds: the p-th percentile is exactly p microseconds.
	samples := make([]time.Duration, 100)
	for i := range samples {
		samples[i] = time.Duration(i+1) * time.Microsecond
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{1, 1 * time.Microsecond},
		{50, 50 * time.Microsecond},
		{90, 90 * time.Microsecond},
		{99, 99 * time.Microsecond},
		{99.9, 100 * time.Microsecond},
		{100, 100 * time.Microsecond},
		{0, 1 * time.Microsecond},
	}
	for _, tt := range tests {
		if got := Percentile(samples, tt.p); got != tt.want {
			t.Errorf("Percentile(1..100us, %v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile(nil) = %v, want 0", got)
	}
}

func TestSummarize(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	samples := make([]time.Duration, 1000)
	for i := range samples {
		samples[i] = time.Duration(1+r.IntN(1000)) * time.Microsecond
	}
	s, err := Summarize(samples, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s.Count != 1000 || s.QPS != 500 {
		t.Errorf("count=%d qps=%v, want 1000 and 500", s.Count, s.QPS)
	}
	ordered := []time.Duration{s.Min, s.P50, s.P90, s.P99, s.P999, s.Max}
	if !slices.IsSorted(ordered) {
		t.Errorf("percentiles out of order: %+v", s)
	}
	// Uniform on 1..1000us: the median is near 500us.
	if s.P50 < 450*time.Microsecond || s.P50 > 550*time.Microsecond {
		t.Errorf("p50 = %v, want 500us +/- 50us for a uniform sample", s.P50)
	}
	if _, err := Summarize(nil, time.Second); err == nil {
		t.Error("Summarize(nil) succeeded, want an error")
	}
	if _, err := Summarize(samples, 0); err == nil {
		t.Error("Summarize with zero elapsed succeeded, want an error")
	}
}

func TestMedian(t *testing.T) {
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("Median(3,1,2) = %v", got)
	}
	xs := []float64{4, 1, 3, 2}
	if got := Median(xs); got != 2.5 {
		t.Errorf("Median(4,1,3,2) = %v", got)
	}
	if xs[0] != 4 {
		t.Error("Median modified its input")
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}
