package triple

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"golang.org/x/net/http2"
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

// FuzzTimeout checks that any accepted grpc-timeout is non-negative and
// follows gRPC's grammar (1 to 8 ASCII digits and a unit), and that
// encoding never shortens a deadline.
func FuzzTimeout(f *testing.F) {
	for _, s := range []string{"1S", "100m", "99999999H", "0n", "5", "", "1x", "-1S", "+1S", " 1S"} {
		f.Add(s, int64(time.Second))
	}
	grammar := regexp.MustCompile(`^[0-9]{1,8}[HMSmun]$`)
	f.Fuzz(func(t *testing.T, s string, d int64) {
		if v, err := decodeTimeout(s); err == nil && (v < 0 || !grammar.MatchString(s)) {
			t.Fatalf("decodeTimeout(%q) = %v, want an error", s, v)
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

// FuzzRecvBuf cuts a byte stream into arbitrary DATA frames: the messages
// taken must be those the whole-stream reader finds.
func FuzzRecvBuf(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 0}, []byte{1, 4, 2})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff}, []byte{3})
	f.Add([]byte{0x80, 0, 0, 0, 0}, []byte{})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		const limit = 1 << 10
		var want [][]byte
		var wantErr bool
		er := &envelopeReader{r: bytes.NewReader(data), maxRecv: limit}
		for {
			buf, err := er.next()
			if err != nil {
				wantErr = !errors.Is(err, io.EOF)
				break
			}
			want = append(want, bytes.Clone(buf.Bytes()))
			putBuf(buf)
		}
		var b recvBuf
		b.init(limit)
		rest := data
		for _, c := range cuts {
			n := min(int(c), len(rest))
			b.put(rest[:n], false)
			rest = rest[n:]
		}
		b.put(rest, true)
		for i := 0; ; i++ {
			m, _, err := b.take(nil)
			if err != nil {
				if errors.Is(err, io.EOF) == wantErr || i != len(want) {
					t.Fatalf("after %d messages: %v (want %d messages, error %v)", i, err, len(want), wantErr)
				}
				return
			}
			if m.compressed {
				// The stream reader refuses it without grpc-encoding;
				// the call's decode step does here.
				if i != len(want) || !wantErr {
					t.Fatalf("compressed message %d where the stream reader saw none", i)
				}
				return
			}
			if i >= len(want) || !bytes.Equal(*m.buf, want[i]) {
				t.Fatalf("message %d differs", i)
			}
		}
	})
}

// FuzzH2ServerFrames sends arbitrary bytes after the HTTP/2 preface: the
// server must neither panic nor hang.
func FuzzH2ServerFrames(f *testing.F) {
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 5, 1, 5, 0, 0, 0, 1, 0x82, 0x86, 0x84, 0x41, 0x00})
	f.Add([]byte{0, 0, 4, 8, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewServer(WithoutReflection())
		c1, c2 := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.serveH2(c1, bufio.NewReader(c1))
		}()
		go func() { _, _ = io.Copy(io.Discard, c2) }()
		_ = c2.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c2.Write([]byte(http2.ClientPreface))
		_, _ = c2.Write(data)
		time.Sleep(time.Millisecond)
		_ = c2.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the server connection did not end")
		}
	})
}

// FuzzTripleTimeout checks that an accepted Triple-Timeout-Ms is a
// non-negative whole number of milliseconds of at most ten digits.
func FuzzTripleTimeout(f *testing.F) {
	for _, s := range []string{"1", "0", "9999999999", "10000000000", "", "-1", "1.5", " 1", "1ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := decodeTripleTimeout(s)
		if err != nil {
			return
		}
		if d < 0 || d > 9999999999*time.Millisecond || d%time.Millisecond != 0 {
			t.Fatalf("decodeTripleTimeout(%q) = %v", s, d)
		}
	})
}

// FuzzTripleError reads arbitrary triple-flavour error responses: it must
// never panic, and never turn an error response into success.
func FuzzTripleError(f *testing.F) {
	f.Add(404, []byte(`{"code":"not_found","message":"no such service"}`))
	f.Add(500, []byte(`{"code":"ok"}`))
	f.Add(503, []byte(`{"code":"unavailable","details":[{"type":"google.rpc.RetryInfo","value":"CgIIAQ"}]}`))
	f.Add(408, []byte(`not json`))
	f.Add(200, []byte(``))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := parseTripleError(status, body)
		if e == nil {
			t.Fatalf("parseTripleError(%d, %q) = nil", status, body)
		}
		if c := e.Code(); c == CodeOK || c > maxCode {
			t.Fatalf("parseTripleError(%d, %q) has code %v", status, body, c)
		}
	})
}
