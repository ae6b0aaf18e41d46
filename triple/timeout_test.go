package triple

import (
	"strings"
	"testing"
	"time"
)

// TestDecodeTimeoutSpec checks grpc-timeout parsing against gRPC's
// PROTOCOL-HTTP2.md: Timeout = 1*8 ASCII digits, then one unit of H M S m
// u n; nothing else (no sign, no spaces, no ninth digit).
func TestDecodeTimeoutSpec(t *testing.T) {
	const maxDur = time.Duration(1<<63 - 1)
	valid := []struct {
		in   string
		want time.Duration
	}{
		{"1H", time.Hour},
		{"1M", time.Minute},
		{"1S", time.Second},
		{"1m", time.Millisecond},
		{"1u", time.Microsecond},
		{"1n", time.Nanosecond},
		{"0S", 0},
		{"0n", 0},
		{"00000001S", time.Second}, // 8 digits, leading zeros
		{"99999999n", 99999999 * time.Nanosecond},
		{"99999999M", 99999999 * time.Minute},
		{"99999999H", maxDur}, // does not fit a Duration: clamped
		{"2562047H", 2562047 * time.Hour},
		{"2562048H", maxDur},
	}
	for _, tc := range valid {
		got, err := decodeTimeout(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("decodeTimeout(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	malformed := []string{
		"", "S", "1", "12",
		"+1S", "-1S", "-0S", "+0n",
		" 1S", "1S ", "1 S", "\t1S",
		"123456789S", "000000001S", // nine digits
		"1.5S", "1e3m", "0x1S", "1_0S", "1,0S",
		"1s", "1h", "1x", "1SS", "S1",
		"\u0661S", // ARABIC-INDIC DIGIT ONE: a digit, but not ASCII
	}
	for _, in := range malformed {
		got, err := decodeTimeout(in)
		if err == nil {
			t.Errorf("decodeTimeout(%q) = %v; want an error", in, got)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "malformed grpc-timeout") {
			t.Errorf("decodeTimeout(%q): error %q does not say what was malformed", in, msg)
		}
	}
}

// TestCallDeadline checks what a call gets from its timeout headers: a
// zero grpc-timeout has expired (DEADLINE_EXCEEDED), a malformed or empty
// one is INTERNAL, as grpc-go answers; tri-service-timeout applies only
// without grpc-timeout.
func TestCallDeadline(t *testing.T) {
	tests := []struct {
		grpcTimeout string
		has         bool
		tri         string
		want        time.Duration
		code        Code
	}{
		{"", false, "", 0, CodeOK},
		{"100m", true, "", 100 * time.Millisecond, CodeOK},
		{"100m", true, "5000", 100 * time.Millisecond, CodeOK},
		{"", false, "250", 250 * time.Millisecond, CodeOK},
		{"", false, "0", 0, CodeOK}, // Dubbo's 0: no deadline
		{"0S", true, "", 0, CodeDeadlineExceeded},
		{"0n", true, "", 0, CodeDeadlineExceeded},
		{"00000000H", true, "", 0, CodeDeadlineExceeded},
		{"", true, "", 0, CodeInternal},
		{"", true, "250", 0, CodeInternal},
		{"+1S", true, "", 0, CodeInternal},
		{"1 S", true, "", 0, CodeInternal},
		{"", false, "-1", 0, CodeInvalidArgument},
	}
	for _, tc := range tests {
		got, err := callDeadline(tc.grpcTimeout, tc.has, tc.tri)
		code := CodeOK
		if err != nil {
			code = err.Code()
		}
		if got != tc.want || code != tc.code {
			t.Errorf("callDeadline(%q, %v, %q) = %v, %v; want %v, %v", tc.grpcTimeout, tc.has, tc.tri, got, err, tc.want, tc.code)
		}
	}
}
