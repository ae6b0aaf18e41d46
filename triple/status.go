package triple

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
)

// writeStatus sets grpc-status, grpc-message and grpc-status-details-bin.
func writeStatus(h http.Header, prefix string, e *Error) {
	encodeStatus(e, func(k, v string) { h[prefix+k] = append(h[prefix+k], v) })
}

// encodeStatus emits grpc-status, grpc-message, grpc-status-details-bin
// and the error's metadata.
func encodeStatus(e *Error, emit func(k, v string)) {
	if e == nil {
		emit("grpc-status", "0")
		return
	}
	emit("grpc-status", strconv.FormatUint(uint64(e.code), 10))
	if e.msg != "" {
		emit("grpc-message", encodeGRPCMessage(e.msg))
	}
	if len(e.details) > 0 {
		if b, err := proto.Marshal(e.statusProto()); err == nil {
			emit("grpc-status-details-bin", base64.RawStdEncoding.EncodeToString(b))
		}
	}
	encodeMetadata(e.meta, emit)
}

// encodeGRPCMessage percent-encodes what gRPC requires: bytes outside
// printable ASCII, and '%'.
func encodeGRPCMessage(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		c := s[i]
		clean = c >= 0x20 && c <= 0x7e && c != '%'
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// decodeGRPCMessage decodes percent-encoding leniently: a malformed escape
// (Java 3.3 may send raw text) is kept as is.
func decodeGRPCMessage(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
