package triple

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
)

// Server serves Triple (gRPC over HTTP/2, h2c or TLS) and HTTP/1.1 JSON
// calls on one port. Register services, then Serve.
type Server struct {
	cfg      serverConfig
	unaryIC  UnaryServerInterceptor
	streamIC StreamServerInterceptor

	mu       sync.RWMutex
	services map[serviceKey]*service
	health   *healthServer

	// Serving: guarded by mu.
	serving bool
	closing bool
	lis     net.Listener
	hs      *http.Server  // HTTP/1 connections, handed over after sniffing
	h1      *connListener // feeds hs
	conns   map[*h2ServerConn]struct{}
	pending map[net.Conn]struct{} // accepted, not yet sniffed
	connWG  sync.WaitGroup
}

type serviceKey struct{ group, name, version string }

type service struct {
	desc    *ServiceDesc
	impl    any
	group   string
	version string
	methods map[string]*MethodDesc
	streams map[string]*StreamDesc
	builtin bool
}

// RegisterOption configures one registration.
type RegisterOption func(*serviceKey)

// ServiceGroup exports the service under a Dubbo group.
func ServiceGroup(g string) RegisterOption { return func(k *serviceKey) { k.group = g } }

// ServiceVersion exports the service under a Dubbo version.
func ServiceVersion(v string) RegisterOption { return func(k *serviceKey) { k.version = v } }

// NewServer returns a server with the built-in health and reflection
// services unless turned off.
func NewServer(opts ...ServerOption) *Server {
	s := &Server{
		cfg: newServerConfig(opts), services: map[serviceKey]*service{},
		conns: map[*h2ServerConn]struct{}{}, pending: map[net.Conn]struct{}{},
	}
	s.unaryIC = chainUnaryServer(s.cfg.unary)
	s.streamIC = chainStreamServer(s.cfg.stream)
	if s.cfg.health {
		s.health = newHealthServer()
		_ = s.Register(&healthServiceDesc, s.health)
	}
	if s.cfg.reflection {
		registerReflection(s)
	}
	for _, svc := range s.services {
		svc.builtin = true
	}
	return s
}

// Register exports impl, which must implement desc.HandlerType, under the
// given group and version. Registering the same key twice is an error.
func (s *Server) Register(desc *ServiceDesc, impl any, opts ...RegisterOption) error {
	if desc == nil || desc.ServiceName == "" {
		return errors.New("triple: Register needs a service descriptor with a name")
	}
	if desc.HandlerType != nil {
		want := reflect.TypeOf(desc.HandlerType).Elem()
		if !reflect.TypeOf(impl).Implements(want) {
			return fmt.Errorf("triple: Register %s: %T does not implement %v", desc.ServiceName, impl, want)
		}
	}
	key := serviceKey{name: desc.ServiceName}
	for _, o := range opts {
		o(&key)
	}
	svc := &service{
		desc: desc, impl: impl, group: key.group, version: key.version,
		methods: map[string]*MethodDesc{}, streams: map[string]*StreamDesc{},
	}
	for i := range desc.Methods {
		svc.methods[desc.Methods[i].MethodName] = &desc.Methods[i]
	}
	for i := range desc.Streams {
		svc.streams[desc.Streams[i].StreamName] = &desc.Streams[i]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.services[key]; dup {
		return fmt.Errorf("triple: %s (group %q, version %q) is already registered", key.name, key.group, key.version)
	}
	s.services[key] = svc
	if s.health != nil {
		s.health.SetServing(desc.ServiceName, true)
	}
	return nil
}

// lookup applies Dubbo Java's rules: the exact group and version, then
// version 1.0.0, then no version. The group never falls back.
func (s *Server) lookup(group, name, version string) *service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if svc := s.services[serviceKey{group, name, version}]; svc != nil {
		return svc
	}
	if svc := s.services[serviceKey{group, name, "1.0.0"}]; svc != nil {
		return svc
	}
	if svc := s.services[serviceKey{group, name, ""}]; svc != nil {
		return svc
	}
	// Health and reflection answer whatever group a tool sends along
	// (grpcurl -H adds headers to its reflection calls too).
	if svc := s.services[serviceKey{"", name, ""}]; svc != nil && svc.builtin {
		return svc
	}
	return nil
}

// served lists what is registered, for "not found" errors.
func (s *Server) served(name string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for k := range s.services {
		if k.name == name {
			out = append(out, fmt.Sprintf("group %q version %q", k.group, k.version))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "the service is not registered here"
	}
	return "registered as: " + strings.Join(out, ", ")
}

// ServiceNames lists the registered service names.
func (s *Server) ServiceNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var names []string
	for k := range s.services {
		if !slices.Contains(names, k.name) {
			names = append(names, k.name)
		}
	}
	sort.Strings(names)
	return names
}

// Health returns the built-in health service, to mark services serving or
// not, or nil when it is off.
func (s *Server) Health() *HealthServer {
	if s.health == nil {
		return nil
	}
	return &HealthServer{s.health}
}

// Serve accepts connections on lis until Shutdown or Close. It sniffs each
// connection: the HTTP/2 preface gets gRPC/Triple, an HTTP/1.1 request line
// gets the JSON handler.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("triple: Serve called twice")
	}
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.serving = true
	if s.cfg.tls != nil {
		cfg := s.cfg.tls.Clone()
		cfg.NextProtos = []string{"h2", "http/1.1"}
		lis = tls.NewListener(lis, cfg)
	}
	s.lis = lis
	s.h1 = newConnListener(lis.Addr())
	s.hs = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(slogWriter{s.cfg.logger}, "", 0),
	}
	s.hs.Protocols = new(http.Protocols)
	s.hs.Protocols.SetHTTP1(true)
	s.connWG.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.connWG.Done()
		_ = s.hs.Serve(s.h1)
	}()
	var delay time.Duration
	for {
		nc, err := lis.Accept()
		if err != nil {
			s.mu.RLock()
			closing := s.closing
			s.mu.RUnlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			_ = s.hs.Close()
			return err
		}
		delay = 0
		if !s.trackPending(nc, true) {
			_ = nc.Close()
			continue
		}
		s.connWG.Add(1)
		go s.serveConn(nc)
	}
}

// serveConn tells HTTP/2 from HTTP/1 and serves the connection.
func (s *Server) serveConn(nc net.Conn) {
	defer s.connWG.Done()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if tc, ok := nc.(*tls.Conn); ok {
		err := tc.Handshake()
		_ = nc.SetReadDeadline(time.Time{})
		s.trackPending(nc, false)
		if err != nil {
			s.cfg.logger.Debug("triple: TLS handshake", "remote", nc.RemoteAddr(), "err", err)
			_ = nc.Close()
			return
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			s.serveH2(tc, bufio.NewReaderSize(tc, ioBufSize))
			return
		}
		s.h1.deliver(tc)
		return
	}
	br := bufio.NewReaderSize(nc, ioBufSize)
	isH2, err := sniffH2(br)
	_ = nc.SetReadDeadline(time.Time{})
	s.trackPending(nc, false)
	switch {
	case isH2:
		s.serveH2(nc, br)
	case err != nil && br.Buffered() == 0:
		_ = nc.Close()
	default:
		s.h1.deliver(&sniffedConn{Conn: nc, r: br})
	}
}

func (s *Server) trackPending(nc net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing {
			return false
		}
		s.pending[nc] = struct{}{}
		return true
	}
	delete(s.pending, nc)
	return true
}

func (s *Server) trackConn(sc *h2ServerConn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing {
			return false
		}
		s.conns[sc] = struct{}{}
		return true
	}
	delete(s.conns, sc)
	return true
}

// stopServing stops accepting and returns the connections to end.
func (s *Server) stopServing() ([]*h2ServerConn, *http.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	if s.lis == nil {
		return nil, nil
	}
	_ = s.lis.Close()
	for nc := range s.pending {
		_ = nc.Close()
	}
	conns := make([]*h2ServerConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	return conns, s.hs
}

// Shutdown stops accepting calls, sends GOAWAY, and waits for calls in
// flight until ctx ends; then it closes what remains.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.health != nil {
		s.health.shutdown()
	}
	conns, hs := s.stopServing()
	if hs == nil {
		return nil
	}
	for _, sc := range conns {
		sc.drain()
	}
	h1 := make(chan error, 1)
	go func() { h1 <- hs.Shutdown(ctx) }()
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.closeConns(errors.New("server shut down"))
		_ = hs.Close()
		<-done
	}
	if herr := <-h1; herr != nil && err == nil {
		err = herr
	}
	return err
}

func (s *Server) closeConns(why error) {
	s.mu.RLock()
	conns := make([]*h2ServerConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.RUnlock()
	for _, sc := range conns {
		sc.close(why)
	}
}

// Close stops the server at once, breaking calls in flight.
func (s *Server) Close() error {
	if s.health != nil {
		s.health.shutdown()
	}
	_, hs := s.stopServing()
	if hs == nil {
		return nil
	}
	s.closeConns(errors.New("server closed"))
	err := hs.Close()
	s.connWG.Wait()
	return err
}

// slogWriter routes net/http's connection-level errors (garbage on the
// port, TLS handshakes) to debug logging.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("triple: http server", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}

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

// CallInfo describes a call to the server side.
type CallInfo struct {
	Service     string
	Method      string
	Group       string
	Version     string
	Application string // tri-consumer-appname
	Protocol    string // "grpc", "triple" (dubbo-go's triple flavour) or "json"
}

type callInfoKey struct{}

// CallInfoFromContext returns the call's info on the server side.
func CallInfoFromContext(ctx context.Context) (CallInfo, bool) {
	switch ci := ctx.Value(callInfoKey{}).(type) {
	case *CallInfo:
		return *ci, true
	case CallInfo:
		return ci, true
	}
	return CallInfo{}, false
}

// splitPath splits "/[context/]service/method".
func splitPath(p string) (svc, method string, ok bool) {
	p = strings.TrimSuffix(p, "/")
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "", "", false
	}
	method = p[i+1:]
	p = p[:i]
	j := strings.LastIndexByte(p, '/')
	svc = p[j+1:]
	return svc, method, svc != "" && method != ""
}

// resolve finds the service and method of a request.
func (s *Server) resolve(r *http.Request) (*service, *MethodDesc, *StreamDesc, CallInfo, *Error) {
	ci := CallInfo{Group: r.Header.Get(hdrTriGroup), Version: r.Header.Get(hdrTriVersion), Application: r.Header.Get(hdrTriApp)}
	svc, md, sd, err := s.resolveCall(r.URL.Path, &ci)
	return svc, md, sd, ci, err
}

// resolveCall finds the service and method of path; ci carries the group,
// version and application in, and gets the service and method names.
func (s *Server) resolveCall(path string, ci *CallInfo) (*service, *MethodDesc, *StreamDesc, *Error) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	name, method, ok := splitPath(path)
	if !ok {
		return nil, nil, nil, Errorf(CodeUnimplemented, "malformed path %q: want /service/Method", path)
	}
	ci.Service, ci.Method = name, method
	svc := s.lookup(ci.Group, name, ci.Version)
	if svc == nil {
		return nil, nil, nil, Errorf(CodeUnimplemented, "unknown service %s (group %q, version %q): %s", name, ci.Group, ci.Version, s.served(name))
	}
	md, sd := svc.find(method)
	if md == nil && sd == nil {
		return nil, nil, nil, Errorf(CodeUnimplemented, "unknown method %s for service %s", method, name)
	}
	return svc, md, sd, nil
}

// find looks a method up by name, then with its first letter lower-cased
// (Java method names), as Dubbo Java does.
func (svc *service) find(method string) (*MethodDesc, *StreamDesc) {
	if md := svc.methods[method]; md != nil {
		return md, nil
	}
	if sd := svc.streams[method]; sd != nil {
		return nil, sd
	}
	for _, m := range [2]string{lowerFirst(method), upperFirst(method)} {
		if m == method {
			continue
		}
		if md := svc.methods[m]; md != nil {
			return md, nil
		}
		if sd := svc.streams[m]; sd != nil {
			return nil, sd
		}
	}
	return nil, nil
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}

// deadline applies grpc-timeout or tri-service-timeout.
func deadline(h http.Header) (time.Duration, *Error) {
	return deadlineOf(h.Get(hdrGRPCTimeout), h.Get(hdrTriTimeout))
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
	ctx := r.Context()
	d, terr := deadline(r.Header)
	if terr != nil {
		st.finish(terr)
		return
	}
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	ctx = newIncomingContext(ctx, readMetadata(r.Header))
	ctx = context.WithValue(ctx, callInfoKey{}, &ci)
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

func fullMethod(svc *service, method string) string { return "/" + svc.desc.ServiceName + "/" + method }

// callUnary runs a unary handler, turning a panic into INTERNAL.
func callUnary(ctx context.Context, md *MethodDesc, impl any, dec func(any) error, ic UnaryServerInterceptor, svc *service, method string) (reply any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Errorf(CodeInternal, "handler %s panicked: %v", fullMethod(svc, method), p)
		}
	}()
	if ic == nil {
		return md.Handler(impl, ctx, dec, nil)
	}
	full := fullMethod(svc, method)
	return md.Handler(impl, ctx, dec, func(ctx context.Context, req any, _ *UnaryServerInfo, h UnaryHandler) (any, error) {
		return ic(ctx, req, &UnaryServerInfo{Server: impl, FullMethod: full}, h)
	})
}

func callStream(sd *StreamDesc, impl any, st ServerStream, ic StreamServerInterceptor, svc *service, method string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Errorf(CodeInternal, "handler %s panicked: %v", fullMethod(svc, method), p)
		}
	}()
	if ic == nil {
		return sd.Handler(impl, st)
	}
	full := fullMethod(svc, method)
	return ic(impl, st, &StreamServerInfo{FullMethod: full, IsClientStream: sd.ClientStreams, IsServerStream: sd.ServerStreams}, sd.Handler)
}

// headerSetter is the server stream behind SetHeader and SetTrailer.
type headerSetter interface {
	SetHeader(Metadata) error
	SetTrailer(Metadata)
}

type streamKey struct{}

// SetHeader adds response headers to the call of ctx (server side), sent
// with the first response message.
func SetHeader(ctx context.Context, md Metadata) error {
	st, ok := ctx.Value(streamKey{}).(headerSetter)
	if !ok {
		return errors.New("triple: SetHeader outside a server call")
	}
	return st.SetHeader(md)
}

// SetTrailer adds response trailers to the call of ctx (server side).
func SetTrailer(ctx context.Context, md Metadata) error {
	st, ok := ctx.Value(streamKey{}).(headerSetter)
	if !ok {
		return errors.New("triple: SetTrailer outside a server call")
	}
	st.SetTrailer(md)
	return nil
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

// respMeta is the response metadata a server stream collects until it is
// sent; both transports' streams embed it.
type respMeta struct {
	headerSent bool
	header     Metadata
	trailer    Metadata
}

// SetHeader adds to the response headers; it fails once they were sent.
func (m *respMeta) SetHeader(md Metadata) error {
	if m.headerSent {
		return errors.New("triple: SetHeader after the headers were sent")
	}
	if m.header == nil {
		m.header = Metadata{}
	}
	for k, v := range md {
		m.header.Append(k, v...)
	}
	return nil
}

// SetTrailer adds to the trailers sent when the call ends.
func (m *respMeta) SetTrailer(md Metadata) {
	if m.trailer == nil {
		m.trailer = Metadata{}
	}
	for k, v := range md {
		m.trailer.Append(k, v...)
	}
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
