package triple

import (
	"fmt"
	"strconv"
	"time"
)

// encodeTimeout formats d as a grpc-timeout value: at most 8 digits and the
// finest unit that fits.
func encodeTimeout(d time.Duration) string {
	if d <= 0 {
		return "0n"
	}
	const maxDigits = 99999999
	units := []struct {
		unit time.Duration
		c    byte
	}{{time.Nanosecond, 'n'}, {time.Microsecond, 'u'}, {time.Millisecond, 'm'}, {time.Second, 'S'}, {time.Minute, 'M'}, {time.Hour, 'H'}}
	for _, u := range units {
		v := d / u.unit
		if d%u.unit != 0 {
			v++ // round up: never send a shorter deadline than the caller's
		}
		if v <= maxDigits {
			var b [9]byte // one allocation: the string
			return string(append(strconv.AppendInt(b[:0], int64(v), 10), u.c))
		}
	}
	return "99999999H"
}

// decodeTimeout parses a grpc-timeout value.
func decodeTimeout(s string) (time.Duration, error) {
	if len(s) < 2 || len(s) > 9 {
		return 0, fmt.Errorf("malformed grpc-timeout %q: want 1 to 8 digits and a unit (H, M, S, m, u, n)", s)
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("malformed grpc-timeout %q: want 1 to 8 digits and a unit (H, M, S, m, u, n)", s)
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, fmt.Errorf("malformed grpc-timeout %q: unknown unit %q (want H, M, S, m, u or n)", s, s[len(s)-1])
	}
	const maxDur = time.Duration(1<<63 - 1)
	if n > int64(maxDur/unit) {
		return maxDur, nil
	}
	return time.Duration(n) * unit, nil
}

// decodeTriTimeout parses tri-service-timeout (milliseconds).
func decodeTriTimeout(s string) (time.Duration, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > int64(time.Duration(1<<63-1)/time.Millisecond) {
		return 0, fmt.Errorf("malformed tri-service-timeout %q: want a non-negative number of milliseconds", s)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// deadlineOf parses grpc-timeout, or else tri-service-timeout.
func deadlineOf(grpcTimeout, triTimeout string) (time.Duration, *Error) {
	if v := grpcTimeout; v != "" {
		d, err := decodeTimeout(v)
		if err != nil {
			return 0, Errorf(CodeInvalidArgument, "%v", err)
		}
		return d, nil
	}
	if v := triTimeout; v != "" {
		d, err := decodeTriTimeout(v)
		if err != nil {
			return 0, Errorf(CodeInvalidArgument, "%v", err)
		}
		return d, nil
	}
	return 0, nil
}
