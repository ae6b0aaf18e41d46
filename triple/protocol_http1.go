package triple

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// serveJSON serves a unary call as HTTP/1.1 (or HTTP/2) JSON, the way Dubbo
// 3.3 does: POST /service/Method with the protobuf JSON of the request.
func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSONError(w, Errorf(CodeUnimplemented, "JSON calls use POST, not %s", r.Method), http.StatusMethodNotAllowed)
		return
	}
	svc, md, sd, ci, rerr := s.resolve(r)
	if rerr != nil {
		writeJSONError(w, rerr, http.StatusNotFound)
		return
	}
	if md == nil {
		writeJSONError(w, Errorf(CodeUnimplemented, "%s/%s is a streaming method (client %v, server %v): call it over HTTP/2 with application/grpc",
			ci.Service, ci.Method, sd.ClientStreams, sd.ServerStreams), http.StatusNotImplemented)
		return
	}
	ci.Protocol = "json"
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.maxRecv)+1))
	if err != nil {
		writeJSONError(w, Errorf(CodeInternal, "read request body: %v", err), 0)
		return
	}
	if len(body) > s.cfg.maxRecv {
		writeJSONError(w, Errorf(CodeResourceExhausted, "request body larger than the limit of %d bytes", s.cfg.maxRecv), 0)
		return
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	d, terr := deadline(r.Header)
	if terr != nil {
		status := 0 // an expired deadline: DEADLINE_EXCEEDED's status
		if terr.code != CodeDeadlineExceeded {
			status = http.StatusBadRequest // a malformed header, as grpc-go answers it
		}
		writeJSONError(w, terr, status)
		return
	}
	ctx, cancel := httpCallContext(r, d, &ci)
	defer cancel()
	codec := jsonCodec{}
	dec := func(m any) error {
		if err := codec.Unmarshal(body, m); err != nil {
			return Errorf(CodeInvalidArgument, "request body is not the JSON of %T: %v", m, err)
		}
		return nil
	}
	reply, err := callUnary(ctx, md, svc.impl, dec, s.unaryIC, svc, ci.Method)
	if err != nil {
		writeJSONError(w, err, 0)
		return
	}
	out, err := codec.MarshalAppend(nil, reply)
	if err != nil {
		writeJSONError(w, Errorf(CodeInternal, "marshal response: %v", err), 0)
		return
	}
	w.Header().Set(hdrContentType, "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out) // a protojson document, served as application/json
}

// writeJSONError writes Dubbo's JSON error body, {"status":..,"message":..},
// with the HTTP status of the code unless httpStatus is given.
func writeJSONError(w http.ResponseWriter, err error, httpStatus int) {
	e := asError(err)
	if httpStatus == 0 {
		httpStatus = e.code.httpStatus()
	}
	w.Header().Set(hdrContentType, "application/json")
	w.WriteHeader(httpStatus)
	b, _ := json.Marshal(struct {
		Status  string `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}{Status: fmt.Sprint(httpStatus), Code: strings.ToUpper(e.code.String()), Message: e.msg})
	_, _ = w.Write(b)
}
