package triple

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http2/hpack"
)

// Metadata holds Dubbo attachments / gRPC metadata: keys as the application
// wrote them (case preserved end to end through tri-header-convert), one or
// more values each. Keys ending in "-bin" carry binary values, sent base64.
type Metadata map[string][]string

// Pairs returns metadata from alternating keys and values.
func Pairs(kv ...string) Metadata {
	md := make(Metadata, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		md[kv[i]] = append(md[kv[i]], kv[i+1])
	}
	return md
}

// Get returns the first value of key, compared without regard to case.
func (md Metadata) Get(key string) string {
	if v, ok := md[key]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range md {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set replaces the values of key.
func (md Metadata) Set(key string, values ...string) { md[key] = values }

// Append adds values to key.
func (md Metadata) Append(key string, values ...string) { md[key] = append(md[key], values...) }

// Clone returns a deep copy.
func (md Metadata) Clone() Metadata {
	out := make(Metadata, len(md))
	for k, v := range md {
		out[k] = append([]string(nil), v...)
	}
	return out
}

type outgoingKey struct{}

type incomingKey struct{}

// NewOutgoingContext attaches md to ctx; calls made with ctx send it as
// attachments.
func NewOutgoingContext(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, outgoingKey{}, md)
}

// AppendToOutgoingContext adds key/value pairs to the outgoing metadata.
func AppendToOutgoingContext(ctx context.Context, kv ...string) context.Context {
	md, _ := FromOutgoingContext(ctx)
	md = md.Clone()
	for i := 0; i+1 < len(kv); i += 2 {
		md.Append(kv[i], kv[i+1])
	}
	return NewOutgoingContext(ctx, md)
}

// FromOutgoingContext returns the outgoing metadata of ctx.
func FromOutgoingContext(ctx context.Context) (Metadata, bool) {
	md, ok := ctx.Value(outgoingKey{}).(Metadata)
	return md, ok
}

// FromIncomingContext returns the attachments a server received with the
// call, keys restored to the case the caller wrote them in.
func FromIncomingContext(ctx context.Context) (Metadata, bool) {
	md, ok := ctx.Value(incomingKey{}).(Metadata)
	return md, ok
}

func newIncomingContext(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, incomingKey{}, md)
}

// Header names of the protocol.
const (
	hdrContentType       = "Content-Type"
	hdrTE                = "Te"
	hdrUserAgent         = "User-Agent"
	hdrGRPCTimeout       = "Grpc-Timeout"
	hdrGRPCEncoding      = "Grpc-Encoding"
	hdrGRPCAcceptEnc     = "Grpc-Accept-Encoding"
	hdrGRPCStatus        = "Grpc-Status"
	hdrGRPCMessage       = "Grpc-Message"
	hdrGRPCStatusDetails = "Grpc-Status-Details-Bin"
	hdrTriGroup          = "Tri-Service-Group"
	hdrTriVersion        = "Tri-Service-Version"
	hdrTriTimeout        = "Tri-Service-Timeout"
	hdrTriApp            = "Tri-Consumer-Appname"
	hdrTriConvert        = "Tri-Header-Convert"
	hdrTriException      = "Tri-Exception-Code"
)

// protocolHeader reports whether a lower-case header name belongs to the
// protocol rather than to the application's attachments.
func protocolHeader(k string) bool {
	if strings.HasPrefix(k, ":") || strings.HasPrefix(k, "grpc-") {
		return true
	}
	switch k {
	case "content-type", "te", "user-agent", "content-length", "accept-encoding", "host", "connection",
		"tri-service-group", "tri-service-version", "tri-service-timeout", "tri-consumer-appname",
		"tri-header-convert", "tri-exception-code", "trailer", "transfer-encoding", "keep-alive",
		"content-encoding", "triple-protocol-version", "triple-timeout-ms":
		return true
	}
	return false
}

// reservedAttachment reports whether Dubbo keeps a key for itself: Java
// never sends these as headers.
func reservedAttachment(k string) bool {
	switch k {
	case "path", "group", "version", "interface", "application", "timeout", "dubbo", "side", "remote.application":
		return true
	}
	return false
}

// writeMetadata encodes md into h: lower-case names, base64 for -bin keys,
// and tri-header-convert for keys that had upper case.
func writeMetadata(h http.Header, md Metadata) {
	encodeMetadata(md, func(k, v string) { h[k] = append(h[k], v) }) // direct: no canonicalization
}

// encodeMetadata emits md as header fields, as writeMetadata describes.
func encodeMetadata(md Metadata, emit func(k, v string)) {
	var convert map[string]string
	for k, vs := range md {
		lk := lowerHeader(k)
		if protocolHeader(lk) || reservedAttachment(lk) || !validHeaderName(lk) {
			continue
		}
		if lk != k {
			if convert == nil {
				convert = map[string]string{}
			}
			convert[lk] = k
		}
		bin := strings.HasSuffix(lk, "-bin")
		for _, v := range vs {
			if bin {
				v = base64.RawStdEncoding.EncodeToString([]byte(v))
			}
			emit(lk, v)
		}
	}
	if convert != nil {
		b, _ := json.Marshal(convert)
		emit(strings.ToLower(hdrTriConvert), url.QueryEscape(string(b)))
	}
}

// lowerHeader lower-cases s without allocating when it is lower case.
func lowerHeader(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(s)
		}
	}
	return s
}

// readMetadata decodes the application's attachments from h.
func readMetadata(h http.Header) Metadata {
	md := make(Metadata, len(h))
	var convert map[string]string
	for _, c := range headerValues(h, hdrTriConvert) {
		convert = parseConvert(convert, c)
	}
	for k, vs := range h {
		for _, v := range vs {
			addMetadata(md, convert, lowerHeader(k), v)
		}
	}
	return md
}

// readMetadataFields decodes the application's attachments from HTTP/2
// header fields (names arrive lower-case).
func readMetadataFields(fields []hpack.HeaderField) Metadata {
	md := make(Metadata, len(fields))
	var convert map[string]string
	for _, f := range fields {
		if f.Name == "tri-header-convert" {
			convert = parseConvert(convert, f.Value) // the context's and RequestHeaders' each send one
		}
	}
	for _, f := range fields {
		addMetadata(md, convert, f.Name, f.Value)
	}
	return md
}

// parseConvert adds the names of one tri-header-convert value to convert
// and returns it; a call may carry several.
func parseConvert(convert map[string]string, c string) map[string]string {
	if c != "" {
		if s, err := url.QueryUnescape(c); err == nil {
			_ = json.Unmarshal([]byte(s), &convert) // a bad map only loses the case; json fills a non-nil map in place
		}
	}
	return convert
}

func addMetadata(md Metadata, convert map[string]string, lk, v string) {
	if protocolHeader(lk) {
		return
	}
	name := lk
	if orig, ok := convert[lk]; ok && strings.EqualFold(orig, lk) {
		name = orig
	}
	if strings.HasSuffix(lk, "-bin") {
		if b, err := decodeBinHeader(v); err == nil {
			v = string(b)
		}
	}
	md[name] = append(md[name], v)
}

// decodeBinHeader decodes a -bin value, padded or not.
func decodeBinHeader(v string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// headerGet reads a header whether the map holds it canonicalized (as
// net/http does for received headers) or lower-case (as written here).
func headerGet(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	if v := h[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// headerValues is every value of a header, canonicalized or lower-case.
func headerValues(h http.Header, name string) []string {
	vs := h.Values(name)
	if lk := strings.ToLower(name); lk != http.CanonicalHeaderKey(name) {
		vs = append(vs[:len(vs):len(vs)], h[lk]...)
	}
	return vs
}
