package identity

import (
	"testing"
	"time"
)

// TestRenewDelay: renewal comes at half the remaining life, earlier by a
// jitter of up to a tenth of it, and at once for an expired certificate.
func TestRenewDelay(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		notAfter time.Time
		below    func(uint64) uint64
		want     time.Duration
	}{
		{"no jitter", now.Add(24 * time.Hour), func(uint64) uint64 { return 0 }, 12 * time.Hour},
		{"most jitter", now.Add(24 * time.Hour), func(n uint64) uint64 { return n - 1 }, 12*time.Hour - 144*time.Minute + 1},
		{"expired", now.Add(-time.Second), func(uint64) uint64 { panic("no jitter for an expired certificate") }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := renewDelay(now, tc.notAfter, tc.below); got != tc.want {
				t.Fatalf("renewDelay = %v, want %v", got, tc.want)
			}
		})
	}
}
