package triple

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// FuzzEnvelope feeds arbitrary bytes to the frame reader: it must never
// panic, never return more than the limit, and fail with a status error on
// malformed input.
func FuzzEnvelope(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 3, 1, 2, 3}, "")
	f.Add([]byte{1, 0, 0, 0, 3, 1, 2, 3}, "gzip")
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff}, "")
	f.Add([]byte{0, 0, 0}, "")
	f.Fuzz(func(t *testing.T, data []byte, enc string) {
		const limit = 1 << 10
		er := &envelopeReader{r: bytes.NewReader(data), maxRecv: limit, compressed: enc}
		for range 100 {
			buf, err := er.next()
			if err != nil {
				var e *Error
				if !errors.Is(err, io.EOF) && !errors.As(err, &e) {
					t.Fatalf("non-status error %T: %v", err, err)
				}
				return
			}
			if buf.Len() > limit {
				t.Fatalf("returned %d bytes, over the %d limit", buf.Len(), limit)
			}
			putBuf(buf)
		}
	})
}

// FuzzTimeout checks that any accepted grpc-timeout is non-negative and that
// encoding never shortens a deadline.
func FuzzTimeout(f *testing.F) {
	for _, s := range []string{"1S", "100m", "99999999H", "0n", "5", "", "1x", "-1S"} {
		f.Add(s, int64(time.Second))
	}
	f.Fuzz(func(t *testing.T, s string, d int64) {
		if v, err := decodeTimeout(s); err == nil && v < 0 {
			t.Fatalf("decodeTimeout(%q) = %v", s, v)
		}
		if d <= 0 {
			return
		}
		enc := encodeTimeout(time.Duration(d))
		got, err := decodeTimeout(enc)
		if err != nil {
			t.Fatalf("encodeTimeout(%d) = %q, which does not decode: %v", d, enc, err)
		}
		if got < time.Duration(d) {
			t.Fatalf("encodeTimeout(%v) = %q decodes to the shorter %v", time.Duration(d), enc, got)
		}
	})
}

// FuzzMetadata round-trips attachments through headers, and reads arbitrary
// header values (tri-header-convert, -bin) without panicking.
func FuzzMetadata(f *testing.F) {
	f.Add("X-Trace-Id", "abc", "%7B%22x%22%3A%22X%22%7D")
	f.Add("token-bin", "\x00\xff", "not json")
	f.Fuzz(func(t *testing.T, key, value, convert string) {
		h := http.Header{}
		h.Set("tri-header-convert", convert)
		h[key] = []string{value}
		_ = readMetadata(h)

		if !validHeaderName(lowerASCII(key)) || protocolHeader(lowerASCII(key)) || reservedAttachment(lowerASCII(key)) {
			return
		}
		if lowerASCII(key) == key && !bytes.HasSuffix([]byte(key), []byte("-bin")) && !validValue(value) {
			return
		}
		if !bytes.HasSuffix([]byte(lowerASCII(key)), []byte("-bin")) && !validValue(value) {
			return
		}
		out := http.Header{}
		writeMetadata(out, Metadata{key: {value}})
		md := readMetadata(out)
		if got := md[key]; len(got) != 1 || got[0] != value {
			t.Fatalf("round trip of %q=%q gave %q (headers %v)", key, value, md, out)
		}
	})
}

// FuzzGRPCMessage checks that percent-encoding round-trips and that lenient
// decoding accepts anything.
func FuzzGRPCMessage(f *testing.F) {
	f.Add("plain")
	f.Add("100% done \u00e9\n")
	f.Add("%zz%4")
	f.Fuzz(func(t *testing.T, s string) {
		if got := decodeGRPCMessage(encodeGRPCMessage(s)); got != s {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
		_ = decodeGRPCMessage(s)
		_, _ = url.QueryUnescape(s)
	})
}

func lowerASCII(s string) string { return string(bytes.ToLower([]byte(s))) }

// validValue reports whether v can travel as a plain header value.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return len(v) == 0 || (v[0] != ' ' && v[len(v)-1] != ' ')
}
