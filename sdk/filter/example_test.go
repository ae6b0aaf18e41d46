package filter_test

import (
	"context"
	"fmt"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
)

func ExampleNewClientChain() {
	logging := filter.Client{Name: "logging", Order: 20, Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
		err := next(ctx, info, req, resp)
		fmt.Println("logging:", info.Path(), call.CodeOf(err))
		return err
	}}
	auth := filter.Client{Name: "auth", Order: 10, Unary: func(ctx context.Context, info *call.Info, req, resp any, next filter.UnaryInvoker) error {
		info.Attachments = info.Attachments.Set("authorization", "Bearer token")
		fmt.Println("auth: token attached")
		return next(ctx, info, req, resp)
	}}
	chain, err := filter.NewClientChain(logging, auth)
	if err != nil {
		fmt.Println(err)
		return
	}
	invoke := chain.Unary(func(_ context.Context, info *call.Info, _, _ any) error {
		fmt.Println("send with", info.Attachments["authorization"])
		return nil
	})
	_ = invoke(context.Background(), &call.Info{Service: "greet.GreetService", Method: "Greet"}, nil, nil)
	// Output:
	// auth: token attached
	// send with Bearer token
	// logging: /greet.GreetService/Greet ok
}
