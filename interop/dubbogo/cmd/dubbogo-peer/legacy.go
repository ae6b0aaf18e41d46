package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/dubbogo/grpc-go/metadata"
	"github.com/dubbogo/grpc-go/status"
	"github.com/dubbogo/triple/pkg/common/constant"
	"github.com/dubbogo/triple/pkg/config"
	"github.com/dubbogo/triple/pkg/triple"

	"github.com/shoalmesh/shoal/interop/dubbogo/driver"
	"github.com/shoalmesh/shoal/interop/dubbogo/greet"
)

// legacyImpl is handed to triple.NewTripleClient, which calls GetDubboStub
// with its connection once, as dubbo-go 3.0's dubbo3 protocol did with the
// generated GreetServiceClientImpl. It keeps the stub so the calls can be
// made through the generated client.
type legacyImpl struct{ stub greet.GreetServiceClient }

func (l *legacyImpl) GetDubboStub(cc *triple.TripleConn) greet.GreetServiceClient {
	l.stub = greet.NewGreetServiceClient(cc)
	return l.stub
}

// runLegacy runs the cases with github.com/dubbogo/triple v1.2.2-rc4 and the
// stubs of protoc-gen-go-triple 1.0.5 (github.com/dubbogo/tools v1.0.9).
// Group, version and attachments travel as outgoing metadata, which is how
// dubbo-go 3.0 sent them (tri-service-group, tri-service-version).
func runLegacy(target string, in io.Reader, out io.Writer) error {
	impl := &legacyImpl{}
	tc, err := triple.NewTripleClient(impl, config.NewTripleOption(
		config.WithLocation(target),
		config.WithCodecType(constant.PBCodecName),
		config.WithClientTimeout(time.Minute),
		config.WithGRPCMaxCallRecvMessageSize(maxMsg),
		config.WithGRPCMaxCallSendMessageSize(maxMsg),
	))
	if err != nil {
		return err
	}
	defer tc.Close()
	return driver.RunClient(in, out, func(k driver.Case) driver.Outcome { return callLegacy(impl.stub, k) })
}

func callLegacy(stub greet.GreetServiceClient, k driver.Case) driver.Outcome {
	ctx, cancel := context.WithTimeout(context.Background(), k.Timeout())
	defer cancel()
	ctx = context.WithValue(ctx, constant.InterfaceKey, "greet.GreetService")
	md := metadata.MD{}
	for name, v := range k.Attachments {
		md.Set(name, v)
	}
	if k.Group != "" {
		md.Set(constant.TripleServiceGroup, k.Group)
	}
	if k.Version != "" {
		md.Set(constant.TripleServiceVersion, k.Version)
	}
	ctx = metadata.NewOutgoingContext(ctx, md)

	var o driver.Outcome
	record := func(r *greet.GreetResponse) { o.Responses = append(o.Responses, driver.NewResponse(r)) }
	err := func() error {
		switch k.Method {
		case "Greet":
			r, ea := stub.Greet(ctx, driver.NewRequest(k.Requests[0]))
			if err := ea.GetError(); err != nil {
				return err
			}
			record(r)
		case "GreetServerStream":
			s, err := stub.GreetServerStream(ctx, driver.NewRequest(k.Requests[0]))
			if err != nil {
				return err
			}
			for {
				r, err := s.Recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				record(r)
			}
		case "GreetClientStream":
			s, err := stub.GreetClientStream(ctx)
			if err != nil {
				return err
			}
			for _, r := range k.Requests {
				if err := s.Send(driver.NewRequest(r)); err != nil {
					break // the status comes from CloseAndRecv
				}
			}
			r, err := s.CloseAndRecv()
			if err != nil {
				return err
			}
			record(r)
		case "GreetBidiStream":
			s, err := stub.GreetBidiStream(ctx)
			if err != nil {
				return err
			}
			for _, r := range k.Requests {
				if err := s.Send(driver.NewRequest(r)); err != nil {
					break
				}
				resp, err := s.Recv()
				if err != nil {
					return err
				}
				record(resp)
			}
			if err := s.CloseSend(); err != nil {
				return err
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		st := status.Convert(err)
		o.Code, o.Message = int(st.Code()), st.Message()
	}
	return o
}
