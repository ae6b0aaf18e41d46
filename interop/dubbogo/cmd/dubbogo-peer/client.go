package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"

	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	tri "dubbo.apache.org/dubbo-go/v3/protocol/triple/triple_protocol"

	"github.com/shoalmesh/shoal/interop/dubbogo/driver"
	"github.com/shoalmesh/shoal/interop/dubbogo/greet"
	"github.com/shoalmesh/shoal/interop/dubbogo/greet/greettriple"
)

const maxMsg = 16 << 20

// caller is what both flavours offer: greettriple.Client (dubbo-go's
// client.Client, gRPC flavour) and the triple flavour on triple_protocol.
type caller interface {
	Greet(ctx context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error)
	GreetServerStream(ctx context.Context, req *greet.GreetRequest) (*tri.ServerStreamForClient, error)
	GreetClientStream(ctx context.Context) (*tri.ClientStreamForClient, error)
	GreetBidiStream(ctx context.Context) (*tri.BidiStreamForClient, error)
}

// peerClient keeps one caller per group and version, as a dubbo-go user
// keeps one reference per group and version.
type peerClient struct {
	dial    func(group, version string) (caller, error)
	callers map[[2]string]caller
}

func newClient(flavour, target string) (*peerClient, error) {
	c := &peerClient{callers: map[[2]string]caller{}}
	switch flavour {
	case "grpc":
		// Fail fast: a retried call would run a case twice on the server.
		cli, err := client.NewClient(client.WithClientProtocolTriple(), client.WithClientClusterFailFast())
		if err != nil {
			return nil, err
		}
		c.dial = func(group, version string) (caller, error) {
			return greettriple.NewClient(cli,
				client.WithURL("tri://"+target),
				client.WithGroup(group), client.WithVersion(version),
				client.WithRequestTimeout(time.Minute),
				client.WithParam(constant.MaxCallRecvMsgSize, "16MiB"),
			)
		}
	case "triple":
		// dubbo-go's client.Client speaks the triple flavour only over
		// HTTP/1.1 (a path its 3.3.2 options never select); triple_protocol
		// is its public protocol package, used here over h2c as a dubbo-go
		// provider-to-provider call would be.
		hc := &http.Client{Transport: &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}}
		c.dial = func(group, version string) (caller, error) {
			return tripleCaller{tri.NewClient(hc, "http://"+target+"/"+greettriple.ServiceName,
				tri.WithTriple(), tri.WithGroup(group), tri.WithVersion(version),
				tri.WithReadMaxBytes(maxMsg), tri.WithSendMaxBytes(maxMsg))}, nil
		}
	}
	return c, nil
}

func (c *peerClient) run(in io.Reader, out io.Writer) error {
	return driver.RunClient(in, out, func(k driver.Case) driver.Outcome {
		key := [2]string{k.Group, k.Version}
		cl, ok := c.callers[key]
		if !ok {
			var err error
			if cl, err = c.dial(k.Group, k.Version); err != nil {
				return driver.Outcome{Code: int(tri.CodeUnavailable), Message: "dial: " + err.Error()}
			}
			c.callers[key] = cl
		}
		return call(cl, k)
	})
}

func call(cl caller, k driver.Case) driver.Outcome {
	ctx, cancel := context.WithTimeout(context.Background(), k.Timeout())
	defer cancel()
	for name, v := range k.Attachments {
		ctx = tri.AppendToOutgoingContext(ctx, name, v)
	}
	var o driver.Outcome
	record := func(r *greet.GreetResponse) { o.Responses = append(o.Responses, driver.NewResponse(r)) }
	err := func() error {
		switch k.Method {
		case greettriple.MethodGreet:
			r, err := cl.Greet(ctx, driver.NewRequest(k.Requests[0]))
			if err != nil {
				return err
			}
			record(r)
		case greettriple.MethodGreetServerStream:
			s, err := cl.GreetServerStream(ctx, driver.NewRequest(k.Requests[0]))
			if err != nil {
				return err
			}
			defer s.Close()
			for s.Receive(new(greet.GreetResponse)) {
				record(s.Msg().(*greet.GreetResponse))
			}
			return s.Err()
		case greettriple.MethodGreetClientStream:
			s, err := cl.GreetClientStream(ctx)
			if err != nil {
				return err
			}
			for _, r := range k.Requests {
				if err := s.Send(driver.NewRequest(r)); err != nil {
					break // the status comes from CloseAndReceive
				}
			}
			resp := new(greet.GreetResponse)
			if err := s.CloseAndReceive(tri.NewResponse(resp)); err != nil {
				return err
			}
			record(resp)
		case greettriple.MethodGreetBidiStream:
			s, err := cl.GreetBidiStream(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = s.CloseResponse() }()
			for _, r := range k.Requests {
				if err := s.Send(driver.NewRequest(r)); err != nil {
					break
				}
				resp := new(greet.GreetResponse)
				if err := s.Receive(resp); err != nil {
					return err
				}
				record(resp)
			}
			if err := s.CloseRequest(); err != nil {
				return err
			}
			if err := s.Receive(new(greet.GreetResponse)); !errors.Is(err, io.EOF) {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		o.Code = int(tri.CodeOf(err))
		var te *tri.Error
		if errors.As(err, &te) {
			o.Message = te.Message()
		} else {
			o.Message = err.Error()
		}
	}
	return o
}

// tripleCaller calls greet.GreetService through triple_protocol directly.
type tripleCaller struct{ c *tri.Client }

func (t tripleCaller) Greet(ctx context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	resp := new(greet.GreetResponse)
	if err := t.c.CallUnary(ctx, tri.NewRequest(req), greettriple.MethodGreet, tri.NewResponse(resp)); err != nil {
		return nil, err
	}
	return resp, nil
}

func (t tripleCaller) GreetServerStream(ctx context.Context, req *greet.GreetRequest) (*tri.ServerStreamForClient, error) {
	return t.c.CallServerStream(ctx, tri.NewRequest(req), greettriple.MethodGreetServerStream)
}

func (t tripleCaller) GreetClientStream(ctx context.Context) (*tri.ClientStreamForClient, error) {
	return t.c.CallClientStream(ctx, greettriple.MethodGreetClientStream)
}

func (t tripleCaller) GreetBidiStream(ctx context.Context) (*tri.BidiStreamForClient, error) {
	return t.c.CallBidiStream(ctx, greettriple.MethodGreetBidiStream)
}
