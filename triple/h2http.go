package triple

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// serveH2HTTP serves a request that is not gRPC (JSON, a browser) through
// ServeHTTP, as net/http would over HTTP/2.
func (s *Server) serveH2HTTP(st *h2ServerStream) {
	req := &http.Request{
		Method:     st.req.method,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     http.Header{},
		Body:       io.NopCloser(&bodyReader{st: st}),
		RemoteAddr: st.sc.nc.RemoteAddr().String(),
		RequestURI: st.req.path,
	}
	for _, f := range st.req.meta {
		switch f.Name {
		case ":authority":
			req.Host = f.Value
		case ":method", ":path", ":scheme":
		default:
			req.Header.Add(f.Name, f.Value)
		}
	}
	u, err := url.ParseRequestURI(st.req.path)
	if err != nil {
		u = &url.URL{Path: st.req.path}
	}
	req.URL = u
	req.ContentLength = -1
	if cl, err := strconv.ParseInt(req.Header.Get("Content-Length"), 10, 64); err == nil {
		req.ContentLength = cl
	}
	w := &h2ResponseWriter{st: st, h: http.Header{}}
	s.ServeHTTP(w, req.WithContext(st.ctx))
	w.end()
}

// h2ResponseWriter is the http.ResponseWriter of serveH2HTTP.
type h2ResponseWriter struct {
	st      *h2ServerStream
	h       http.Header
	status  int
	hdrSent bool
	err     error
}

func (w *h2ResponseWriter) Header() http.Header { return w.h }

func (w *h2ResponseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *h2ResponseWriter) writeHeaders(end bool) func() error {
	return func() error {
		w.st.responded.Store(true)
		c := &w.st.sc.h2Conn
		c.hf(":status", strconv.Itoa(w.status))
		for k, vs := range w.h {
			lk := strings.ToLower(k)
			switch lk {
			case "connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection":
				continue
			}
			for _, v := range vs {
				c.hf(lk, v)
			}
		}
		return c.endHeaders(w.st.id, end)
	}
}

func (w *h2ResponseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.err != nil {
		return 0, w.err
	}
	var pre func() error
	if !w.hdrSent {
		w.hdrSent = true
		pre = w.writeHeaders(false)
	}
	if w.err = w.st.sc.sendData(&w.st.h2Stream, pre, p, false, nil, nil); w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Flush is a no-op: every Write goes out at once.
func (w *h2ResponseWriter) Flush() {}

func (w *h2ResponseWriter) end() {
	if w.err != nil || w.st.reset.Load() {
		return
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !w.hdrSent {
		w.hdrSent = true
		_ = w.st.sc.write(w.writeHeaders(true))
	} else {
		_ = w.st.sc.sendData(&w.st.h2Stream, nil, nil, true, nil, nil)
	}
	if !w.st.recv.peerDone() {
		w.st.sc.queue(ctrlFrame{kind: ctrlRST, id: w.st.id, code: 0})
	}
}
