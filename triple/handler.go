package triple

import (
	"context"
	"errors"
	"time"
)

// CallInfo describes a call to the server side.
type CallInfo struct {
	Service     string
	Method      string
	Group       string
	Version     string
	Application string // tri-consumer-appname
	Protocol    string // "grpc", "triple" (dubbo-go's triple flavour) or "json"
	Authority   string // :authority (HTTP/2) or Host (HTTP/1.1)
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

func fullMethod(svc *service, method string) string { return "/" + svc.desc.ServiceName + "/" + method }

// callUnary runs a unary handler, turning a panic into INTERNAL.
func callUnary(ctx context.Context, md *MethodDesc, impl any, dec func(any) error, ic UnaryServerInterceptor, svc *service, method string) (reply any, err error) {
	if err := expiredAtStart(ctx); err != nil {
		return nil, err
	}
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
	if err := expiredAtStart(st.Context()); err != nil {
		return err
	}
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

// expiredAtStart fails a call whose deadline has passed before its handler
// (or interceptors) would run, as a grpc-timeout of 1n always has: the
// handler never runs, and the caller gets DEADLINE_EXCEEDED.
func expiredAtStart(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return Errorf(CodeDeadlineExceeded, "the call's deadline passed before its handler started")
	}
	return nil
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
