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

// decodeTimeout parses a grpc-timeout value as gRPC's PROTOCOL-HTTP2 spec
// defines it: 1 to 8 ASCII digits, then one unit letter (H M S m u n); no
// sign, no spaces. A value too large for a time.Duration is clamped.
func decodeTimeout(s string) (time.Duration, error) {
	if len(s) < 2 || len(s) > 9 {
		return 0, errMalformedTimeout(s)
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
		return 0, fmt.Errorf("malformed grpc-timeout %+q: unknown unit %+q (want H, M, S, m, u or n)", s, s[len(s)-1:])
	}
	var n int64 // at most 8 digits: no overflow
	for _, c := range []byte(s[:len(s)-1]) {
		if c < '0' || c > '9' {
			return 0, errMalformedTimeout(s)
		}
		n = n*10 + int64(c-'0')
	}
	const maxDur = time.Duration(1<<63 - 1)
	if n > int64(maxDur/unit) {
		return maxDur, nil
	}
	return time.Duration(n) * unit, nil
}

func errMalformedTimeout(s string) error {
	return fmt.Errorf("malformed grpc-timeout %+q: want 1 to 8 ASCII digits and a unit (H, M, S, m, u or n), no sign or spaces, e.g. 100m", s)
}

// decodeTriTimeout parses tri-service-timeout (milliseconds).
func decodeTriTimeout(s string) (time.Duration, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > int64(time.Duration(1<<63-1)/time.Millisecond) {
		return 0, fmt.Errorf("malformed tri-service-timeout %q: want a non-negative number of milliseconds", s)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// callDeadline is how long a call may run: grpc-timeout when the request
// has one (hasGRPCTimeout, even if empty), or else tri-service-timeout;
// zero means no deadline. As in grpc-go, a malformed grpc-timeout is
// INTERNAL, and a zero one (0S, 0n) has already expired: DEADLINE_EXCEEDED
// before the handler runs.
func callDeadline(grpcTimeout string, hasGRPCTimeout bool, triTimeout string) (time.Duration, *Error) {
	if hasGRPCTimeout {
		d, err := decodeTimeout(grpcTimeout)
		if err != nil {
			return 0, Errorf(CodeInternal, "%v", err)
		}
		if d == 0 {
			return 0, Errorf(CodeDeadlineExceeded, "grpc-timeout %s: the deadline had passed when the call arrived", grpcTimeout)
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
