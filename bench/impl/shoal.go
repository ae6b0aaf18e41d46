package impl

import (
	"context"
	"net"
	"time"

	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/triple"
)

func init() {
	Register(Impl{Name: "shoal", Serve: serveShoal, Dial: dialShoal})
}

type shoalEcho struct {
	greettriple.UnimplementedGreetServiceHandler
}

func (shoalEcho) Greet(_ context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	return &greet.GreetResponse{Payload: req.GetPayload()}, nil
}

func serveShoal(ctx context.Context, addr string, ready func(string)) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := triple.NewServer()
	if err := greettriple.RegisterGreetServiceHandler(s, shoalEcho{}); err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		// ctx is over: the drain gets a fresh, bounded context of its own.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(sctx)
	}()
	ready(lis.Addr().String())
	return s.Serve(lis)
}

type shoalCaller struct {
	cc     *triple.ClientConn
	client greettriple.GreetServiceClient
}

func dialShoal(target string) (Caller, error) {
	cc, err := triple.Dial("tri://" + target)
	if err != nil {
		return nil, err
	}
	return &shoalCaller{cc: cc, client: greettriple.NewGreetServiceClient(cc)}, nil
}

func (c *shoalCaller) Call(ctx context.Context, payload []byte) error {
	resp, err := c.client.Greet(ctx, &greet.GreetRequest{Payload: payload})
	if err != nil {
		return err
	}
	return checkEcho(payload, resp.GetPayload())
}

func (c *shoalCaller) Close() error { return c.cc.Close() }
