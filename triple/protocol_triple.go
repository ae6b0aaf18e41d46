package triple

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/types/known/anypb"
)

// The triple flavour of dubbo-go 3.3 ("triple_protocol", derived from
// connect-go): a unary call is POST /service/Method with the bare message
// as the body (no gRPC envelope), content-type application/proto (or
// application/json), Triple-Protocol-Version: 0.1.0, the deadline in
// Triple-Timeout-Ms and compression in Content-Encoding/Accept-Encoding.
// A success is HTTP 200 with the bare reply; response trailers travel as
// headers prefixed "Trailer-". A failure is a non-200 status and the JSON
// body {"code":"not_found","message":"...","details":[...]}. The flavour
// has no streaming calls: dubbo-go serves streams only as gRPC.

const (
	hdrTripleVersion  = "Triple-Protocol-Version"
	hdrTripleTimeout  = "Triple-Timeout-Ms"
	hdrContentEnc     = "Content-Encoding"
	hdrAcceptEnc      = "Accept-Encoding"
	tripleVersion     = "0.1.0"
	tripleTrailerPfx  = "trailer-"
	tripleContentType = "application/proto"
)

// tripleCodecFor returns the codec of a triple-flavour request's content
// type, or nil when the request is not of the triple flavour: any
// application/proto, and application/json when Triple-Protocol-Version is
// present (plain application/json is Dubbo Java's HTTP/1 JSON).
func tripleCodecFor(h http.Header, ct string) Codec {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil
	}
	switch mt {
	case tripleContentType:
		return protoCodec{}
	case "application/json":
		if headerGet(h, hdrTripleVersion) != "" {
			return jsonCodec{}
		}
	}
	return nil
}

// decodeTripleTimeout parses Triple-Timeout-Ms: 1 to 10 decimal digits.
func decodeTripleTimeout(s string) (time.Duration, error) {
	bad := len(s) == 0 || len(s) > 10
	for i := 0; i < len(s) && !bad; i++ {
		bad = s[i] < '0' || s[i] > '9'
	}
	if bad {
		return 0, fmt.Errorf("malformed %s %q: want 1 to 10 decimal digits (milliseconds)", hdrTripleTimeout, s)
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * time.Millisecond, nil
}

// tripleDeadline reads Triple-Timeout-Ms, or else Dubbo's
// tri-service-timeout; timed says whether the call has a deadline.
func tripleDeadline(h http.Header) (d time.Duration, timed bool, _ *Error) {
	if v := headerGet(h, hdrTripleTimeout); v != "" {
		d, err := decodeTripleTimeout(v)
		if err != nil {
			return 0, false, Errorf(CodeInvalidArgument, "%v", err)
		}
		return d, true, nil
	}
	if v := headerGet(h, hdrTriTimeout); v != "" {
		d, err := decodeTriTimeout(v)
		if err != nil {
			return 0, false, Errorf(CodeInvalidArgument, "%v", err)
		}
		return d, d > 0, nil
	}
	return 0, false, nil
}

// acceptsGzip reports whether an Accept-Encoding list names gzip.
func acceptsGzip(list string) bool {
	for _, e := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
		if name, _, _ := strings.Cut(e, ";"); strings.EqualFold(name, encodingGzip) {
			return true
		}
	}
	return false
}

// serveTriple serves a unary call of the triple flavour, over HTTP/1.1 or
// HTTP/2 (the HTTP/2 transport hands non-gRPC requests to ServeHTTP).
func (s *Server) serveTriple(w http.ResponseWriter, r *http.Request, codec Codec) {
	var rm respMeta
	ct := r.Header.Get(hdrContentType)
	fail := func(err error) { writeTripleError(w, &rm, err) }
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(Errorf(CodeUnimplemented, "triple-flavour calls use POST, not %s", r.Method))
		return
	}
	if v := headerGet(r.Header, hdrTripleVersion); v != "" && v != tripleVersion {
		fail(Errorf(CodeInvalidArgument, "%s must be %q, got %q", hdrTripleVersion, tripleVersion, v))
		return
	}
	enc := headerGet(r.Header, hdrContentEnc)
	if enc != "" && enc != encodingIdentity && enc != encodingGzip {
		w.Header().Set(hdrAcceptEnc, encodingGzip)
		fail(Errorf(CodeUnimplemented, "unsupported Content-Encoding %q: this server accepts gzip and identity", enc))
		return
	}
	svc, md, sd, ci, rerr := s.resolve(r)
	if rerr != nil {
		fail(rerr)
		return
	}
	if md == nil {
		fail(Errorf(CodeUnimplemented, "%s/%s is a streaming method (client %v, server %v): the triple flavour is unary only; call it with application/grpc",
			ci.Service, ci.Method, sd.ClientStreams, sd.ServerStreams))
		return
	}
	ci.Protocol = "triple"
	ctx := r.Context()
	d, timed, terr := tripleDeadline(r.Header)
	if terr != nil {
		fail(terr)
		return
	}
	if timed {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.maxRecv)+1))
	if err != nil {
		if ctx.Err() != nil {
			fail(Errorf(CodeOf(ctx.Err()), "read request body: %v", ctx.Err()))
			return
		}
		fail(Errorf(CodeInternal, "read request body: %v", err))
		return
	}
	if len(body) > s.cfg.maxRecv {
		fail(Errorf(CodeResourceExhausted, "request body larger than the limit of %d bytes", s.cfg.maxRecv))
		return
	}
	if enc == encodingGzip && len(body) > 0 {
		if body, err = gzipDecompress(body, s.cfg.maxRecv); err != nil {
			fail(err)
			return
		}
	}
	ctx = newIncomingContext(ctx, readMetadata(r.Header))
	ctx = context.WithValue(ctx, callInfoKey{}, &ci)
	ctx = context.WithValue(ctx, streamKey{}, &rm)
	ctx = context.WithValue(ctx, peerKey{}, requestPeer(r))
	dec := func(m any) error {
		if err := codec.Unmarshal(body, m); err != nil {
			return Errorf(CodeInvalidArgument, "request body is not the %s encoding of %T: %v", codec.Name(), m, err)
		}
		return nil
	}
	reply, err := callUnary(ctx, md, svc.impl, dec, s.unaryIC, svc, ci.Method)
	if err != nil {
		fail(err)
		return
	}
	out, err := codec.MarshalAppend(nil, reply)
	if err != nil {
		fail(Errorf(CodeInternal, "marshal response: %v", err))
		return
	}
	if len(out) > s.cfg.maxSend {
		fail(Errorf(CodeResourceExhausted, "response of %d bytes exceeds the send limit of %d bytes", len(out), s.cfg.maxSend))
		return
	}
	h := w.Header()
	// A client that compressed its request gets a compressed reply, as
	// connect servers answer; otherwise the reply goes as it is.
	if enc == encodingGzip && acceptsGzip(headerGet(r.Header, hdrAcceptEnc)) {
		var zb bytes.Buffer
		if gzipCompress(&zb, out) == nil {
			out = zb.Bytes()
			h.Set(hdrContentEnc, encodingGzip)
		}
	}
	h.Set(hdrContentType, ct)
	h.Set(hdrAcceptEnc, encodingGzip)
	setWrapperHeader(h, reply) // wrapper mode: tri-exception-code
	h.Set("Content-Length", strconv.Itoa(len(out)))
	rm.writeTripleMeta(h, nil)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// writeTripleMeta puts the response headers, the error's metadata and the
// trailers (prefixed "trailer-") into h, and marks the headers sent.
func (m *respMeta) writeTripleMeta(h http.Header, e *Error) {
	m.headerSent = true
	writeMetadata(h, m.header)
	if e != nil {
		writeMetadata(h, e.meta)
	}
	encodeMetadata(m.trailer, func(k, v string) { h[tripleTrailerPfx+k] = append(h[tripleTrailerPfx+k], v) })
}

// tripleWireError is the JSON error body of the triple flavour.
type tripleWireError struct {
	Code    string             `json:"code"`
	Message string             `json:"message,omitempty"`
	Details []tripleWireDetail `json:"details,omitempty"`
}

type tripleWireDetail struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// writeTripleError answers a triple-flavour call with an error: the HTTP
// status of its code and the JSON body.
func writeTripleError(w http.ResponseWriter, rm *respMeta, err error) {
	e := asError(err)
	if e.code == CodeOK {
		e = &Error{code: CodeUnknown, msg: e.msg}
	}
	wire := tripleWireError{Code: e.code.String(), Message: e.msg}
	for _, d := range e.details {
		wire.Details = append(wire.Details, tripleWireDetail{
			Type:  strings.TrimPrefix(d.GetTypeUrl(), "type.googleapis.com/"),
			Value: base64.RawStdEncoding.EncodeToString(d.GetValue()),
		})
	}
	b, _ := json.Marshal(wire)
	h := w.Header()
	rm.writeTripleMeta(h, e)
	h.Set(hdrContentType, "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.code.tripleHTTPStatus())
	_, _ = w.Write(b)
}

// parseTripleError reads a triple-flavour error body; with no readable
// body the HTTP status decides the code, as dubbo-go's client does.
func parseTripleError(status int, body []byte) *Error {
	var wire tripleWireError
	if json.Unmarshal(body, &wire) == nil && wire.Code != "" {
		code, err := ParseCode(wire.Code)
		if err != nil || code == CodeOK {
			code = CodeUnknown
		}
		e := &Error{code: code, msg: wire.Message}
		for _, d := range wire.Details {
			v, err := decodeBinHeader(d.Value)
			if err != nil {
				continue
			}
			t := d.Type
			if !strings.Contains(t, "/") {
				t = "type.googleapis.com/" + t
			}
			e.details = append(e.details, &anypb.Any{TypeUrl: t, Value: v})
		}
		return e
	}
	return Errorf(tripleCodeFromHTTP(status), "HTTP status %d %s from the server", status, http.StatusText(status))
}

// tripleHTTPStatus is the HTTP status of a triple-flavour error, as
// dubbo-go (and the connect protocol) map codes.
func (c Code) tripleHTTPStatus() int {
	switch c {
	case CodeCanceled, CodeDeadlineExceeded:
		return 408
	case CodeInvalidArgument, CodeOutOfRange:
		return 400
	case CodeNotFound, CodeUnimplemented:
		return 404
	case CodeAlreadyExists, CodeAborted:
		return 409
	case CodePermissionDenied:
		return 403
	case CodeResourceExhausted:
		return 429
	case CodeFailedPrecondition:
		return 412
	case CodeUnavailable:
		return 503
	case CodeUnauthenticated:
		return 401
	}
	return 500
}

// tripleCodeFromHTTP maps the status of an error response without a
// readable body, as dubbo-go's triple client does.
func tripleCodeFromHTTP(status int) Code {
	switch status {
	case 400:
		return CodeInvalidArgument
	case 401:
		return CodeUnauthenticated
	case 403:
		return CodePermissionDenied
	case 404:
		return CodeUnimplemented
	case 408:
		return CodeDeadlineExceeded
	case 412:
		return CodeFailedPrecondition
	case 413, 431:
		return CodeResourceExhausted
	case 429, 502, 503, 504:
		return CodeUnavailable
	}
	return CodeUnknown
}

// invokeTriple makes a unary call in the triple flavour on the HTTP/2
// transport.
func (cc *ClientConn) invokeTriple(ctx context.Context, method string, req, reply any, cfg *callConfig, compress bool) error {
	body, err := protoCodec{}.MarshalAppend(nil, req)
	if err != nil {
		return Errorf(CodeInternal, "marshal request: %v", err)
	}
	if compress && len(body) > 0 {
		var zb bytes.Buffer
		if err := gzipCompress(&zb, body); err != nil {
			return Errorf(CodeInternal, "compress request: %v", err)
		}
		body = zb.Bytes()
	} else {
		compress = false
	}
	if len(body) > cc.cfg.maxSend {
		return Errorf(CodeResourceExhausted, "request of %d bytes exceeds the send limit of %d bytes", len(body), cc.cfg.maxSend)
	}
	for attempt := 0; ; attempt++ {
		c, err := cc.getConn(ctx)
		if err != nil {
			return err
		}
		cs := newClientStream(c, ctx, true, compress)
		cs.triple = true
		cs.recv.raw = true
		if err = c.open(cs, method, cfg, body); err == nil {
			err = cs.awaitTriple(reply, cfg)
		} else {
			err = cs.sendFailure(err)
		}
		if err == nil || !cs.refused.Load() || attempt == 3 || ctx.Err() != nil {
			return err
		}
	}
}

// writeTripleHeaders encodes a triple-flavour request's headers.
func (cs *clientStream) writeTripleHeaders(method string, cfg *callConfig, endStream bool) error {
	c, cc := cs.c, cs.c.cc
	c.hf(":method", "POST")
	c.hf(":scheme", cc.scheme)
	c.hf(":path", method)
	c.hf(":authority", cc.host)
	c.hf("content-type", tripleContentType)
	c.hf("triple-protocol-version", tripleVersion)
	c.hf("user-agent", cc.cfg.userAgent)
	c.hf("accept-encoding", encodingGzip)
	if dl, ok := cs.ctx.Deadline(); ok {
		ms := (time.Until(dl) + time.Millisecond - 1) / time.Millisecond
		if v := strconv.FormatInt(int64(max(ms, 1)), 10); len(v) <= 10 {
			c.hfNoIndex("triple-timeout-ms", v)
		}
	}
	if cs.compress {
		c.hf("content-encoding", encodingGzip)
	}
	return cs.endCallHeaders(cfg, endStream)
}

// onTripleHeaders reads a triple-flavour response's header block: the
// status, content type and encoding, the headers, and the trailers that
// travel as "trailer-" headers. recv.mu held.
func (cs *clientStream) onTripleHeaders(fields []hpack.HeaderField, end bool) {
	b := &cs.recv
	first := !cs.gotHeaders
	cs.gotHeaders = true
	for _, f := range fields {
		switch {
		case !first:
			if f.Name == "tri-header-convert" || !protocolHeader(f.Name) {
				cs.trlMeta = append(cs.trlMeta, f)
			}
		case f.Name == ":status":
			cs.httpStatus, _ = strconv.Atoi(f.Value)
		case f.Name == "content-type":
			cs.contentType = f.Value
		case f.Name == "content-encoding":
			cs.encoding = f.Value
		case f.Name == "tri-exception-code":
			cs.exception = f.Value
		case strings.HasPrefix(f.Name, tripleTrailerPfx):
			cs.trlMeta = append(cs.trlMeta, hpack.HeaderField{Name: f.Name[len(tripleTrailerPfx):], Value: f.Value})
		case f.Name == "tri-header-convert" || !protocolHeader(f.Name):
			cs.hdrMeta = append(cs.hdrMeta, f)
		}
	}
	if end {
		b.eof = true
	}
	b.wakeLocked()
}

// awaitTriple finishes a triple-flavour call: the whole body, then the
// reply or the error it describes.
func (cs *clientStream) awaitTriple(reply any, cfg *callConfig) error {
	defer cs.store(cfg)
	limit := cs.recv.maxRecv
	var body []byte
	for {
		m, err := cs.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		n := len(*m.buf)
		if len(body)+n > limit {
			putMsgBuf(m.buf)
			cs.abort(errors.New("response too large"))
			return Errorf(CodeResourceExhausted, "response body larger than the receive limit of %d bytes", limit)
		}
		body = append(body, *m.buf...)
		putMsgBuf(m.buf)
	}
	cs.recv.mu.Lock()
	status, ct, enc := cs.httpStatus, cs.contentType, cs.encoding
	cs.recv.mu.Unlock()
	switch enc {
	case "", encodingIdentity:
	case encodingGzip:
		if len(body) > 0 {
			var err error
			if body, err = gzipDecompress(body, limit); err != nil {
				return err
			}
		}
	default:
		return Errorf(CodeInternal, "unknown Content-Encoding %q from the server: this client accepts gzip", enc)
	}
	if status != http.StatusOK {
		e := parseTripleError(status, body)
		e.meta = cs.errorMeta()
		cs.recv.mu.Lock()
		for k, v := range readMetadataFields(cs.hdrMeta) {
			e.meta.Append(k, v...)
		}
		cs.recv.mu.Unlock()
		return e
	}
	var codec Codec = protoCodec{}
	if mt, _, _ := mime.ParseMediaType(ct); mt == "application/json" {
		codec = jsonCodec{}
	}
	if err := codec.Unmarshal(body, reply); err != nil {
		return Errorf(CodeInternal, "unmarshal %T: %v", reply, err)
	}
	cs.readException(reply)
	return nil
}
