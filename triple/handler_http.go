package triple

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ServeHTTP dispatches one request; a Server can also be mounted in an
// existing http.Server (with HTTP/2 enabled).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get(hdrContentType)
	if strings.HasPrefix(ct, "application/grpc") {
		s.serveGRPC(w, r)
		return
	}
	if codec := tripleCodecFor(r.Header, ct); codec != nil {
		s.serveTriple(w, r, codec)
		return
	}
	switch {
	case strings.HasPrefix(ct, "application/json"):
		s.serveJSON(w, r)
	default:
		writeJSONError(w, &Error{code: CodeUnimplemented, msg: fmt.Sprintf(
			"unsupported content type %q: call with application/grpc (gRPC/Triple over HTTP/2), application/proto (dubbo-go's triple flavour) or application/json (HTTP/1.1 JSON)", ct)},
			http.StatusUnsupportedMediaType)
	}
}

// deadline applies grpc-timeout or tri-service-timeout; a grpc-timeout
// header with an empty value is malformed, not absent.
func deadline(h http.Header) (time.Duration, *Error) {
	var grpcTimeout string
	v, has := h[hdrGRPCTimeout]
	if has = has && len(v) > 0; has {
		grpcTimeout = v[0]
	}
	return callDeadline(grpcTimeout, has, h.Get(hdrTriTimeout))
}

// httpCallContext is the context of a call served through net/http: the
// request's, bounded by d when d > 0, carrying the request's metadata and
// ci. Call cancel when the call ends.
func httpCallContext(r *http.Request, d time.Duration, ci *CallInfo) (ctx context.Context, cancel context.CancelFunc) {
	ctx, cancel = r.Context(), func() {}
	if d > 0 {
		ctx, cancel = context.WithTimeout(ctx, d)
	}
	ctx = newIncomingContext(ctx, readMetadata(r.Header))
	ctx = context.WithValue(ctx, peerKey{}, requestPeer(r))
	return context.WithValue(ctx, callInfoKey{}, ci), cancel
}

func (s *Server) serveGRPC(w http.ResponseWriter, r *http.Request) {
	st := &serverStream{w: w, req: r, codec: protoCodec{}, maxSend: s.cfg.maxSend}
	if r.Method != http.MethodPost {
		st.finish(Errorf(CodeUnimplemented, "gRPC calls use POST, not %s", r.Method))
		return
	}
	svc, md, sd, ci, rerr := s.resolve(r)
	if rerr != nil {
		st.finish(rerr)
		return
	}
	ci.Protocol = "grpc"
	enc := r.Header.Get(hdrGRPCEncoding)
	if enc != "" && enc != encodingIdentity && enc != encodingGzip {
		st.finish(Errorf(CodeUnimplemented, "unsupported grpc-encoding %q: this server accepts gzip and identity", enc))
		return
	}
	d, terr := deadline(r.Header)
	if terr != nil {
		st.finish(terr)
		return
	}
	ctx, cancel := httpCallContext(r, d, &ci)
	defer cancel()
	ctx = context.WithValue(ctx, streamKey{}, st)
	st.ctx = ctx
	st.body = &envelopeReader{r: r.Body, maxRecv: s.cfg.maxRecv, compressed: enc}

	var err error
	if md != nil {
		var reply any
		reply, err = callUnary(ctx, md, svc.impl, st.recvUnary, s.unaryIC, svc, ci.Method)
		if err == nil {
			err = st.SendMsg(reply)
		}
	} else {
		err = callStream(sd, svc.impl, st, s.streamIC, svc, ci.Method)
	}
	st.finish(err)
}

// serverStream is one call on the server.
type serverStream struct {
	ctx      context.Context
	w        http.ResponseWriter
	req      *http.Request
	body     *envelopeReader
	codec    Codec
	maxSend  int
	finished bool
	respMeta
}

func (st *serverStream) Context() context.Context { return st.ctx }

func (st *serverStream) SendHeader(md Metadata) error {
	if err := st.SetHeader(md); err != nil {
		return err
	}
	st.writeHeader()
	return http.NewResponseController(st.w).Flush()
}

func (st *serverStream) writeHeader() {
	if st.headerSent {
		return
	}
	st.headerSent = true
	h := st.w.Header()
	h.Set(hdrContentType, "application/grpc")
	writeMetadata(h, st.header)
	st.w.WriteHeader(http.StatusOK)
}

func (st *serverStream) SendMsg(m any) error {
	if err := st.ctx.Err(); err != nil {
		return Errorf(CodeOf(err), "call ended: %v", err)
	}
	buf, err := marshalEnvelope(st.codec, m, false, st.maxSend)
	if err != nil {
		return err
	}
	defer putBuf(buf)
	if !st.headerSent {
		setWrapperHeader(st.w.Header(), m) // wrapper mode: tri-exception-code
	}
	st.writeHeader()
	if _, err := st.w.Write(buf.Bytes()); err != nil {
		return Errorf(CodeUnavailable, "write response: %v", err)
	}
	return http.NewResponseController(st.w).Flush()
}

func (st *serverStream) RecvMsg(m any) error {
	buf, err := st.body.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return st.wireErr(err)
	}
	defer putBuf(buf)
	if err := st.codec.Unmarshal(buf.Bytes(), m); err != nil {
		return Errorf(CodeInternal, "unmarshal request into %T: %v", m, err)
	}
	return nil
}

func (st *serverStream) wireErr(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if ctxErr := st.ctx.Err(); ctxErr != nil {
		return Errorf(CodeOf(ctxErr), "read request: %v", ctxErr)
	}
	return Errorf(CodeInternal, "read request: %v", err)
}

// recvUnary reads the single request of a unary call.
func (st *serverStream) recvUnary(m any) error {
	if err := st.RecvMsg(m); err != nil {
		if errors.Is(err, io.EOF) {
			return Errorf(CodeInternal, "unary call without a request message")
		}
		return err
	}
	var extra [1]byte
	if n, _ := io.ReadFull(st.body.r, extra[:]); n > 0 {
		return Errorf(CodeInternal, "unary call with more than one request message")
	}
	return nil
}

// finish ends the call with trailers, or with a trailers-only response
// when nothing was sent yet.
func (st *serverStream) finish(err error) {
	if st.finished {
		return
	}
	st.finished = true
	var e *Error
	if err != nil {
		e = asError(err)
	}
	h := st.w.Header()
	if !st.headerSent {
		// Trailers-only: status in the one HEADERS frame.
		h.Set(hdrContentType, "application/grpc")
		writeMetadata(h, st.header)
		writeMetadata(h, st.trailer)
		writeStatus(h, "", e)
		st.headerSent = true
		st.w.WriteHeader(http.StatusOK)
		return
	}
	th := http.Header{}
	writeMetadata(th, st.trailer)
	writeStatus(th, "", e)
	for k, vs := range th {
		for _, v := range vs {
			h.Add(http.TrailerPrefix+k, v)
		}
	}
}
