// Command server provides greet.GreetService with Shoal. With no shoal.yaml
// it serves Triple on port 50051 and registers in the embedded file registry,
// so the client in ../client finds it with no control plane:
//
//	go run ./samples/go/helloworld/server
//
// Try it with curl too:
//
//	curl -H 'Content-Type: application/json' -d '{"name":"curl"}' http://127.0.0.1:50051/greet.GreetService/Greet
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// greeter implements greet.GreetService.
type greeter struct {
	greettriple.UnimplementedGreetServiceHandler
	name string
}

func (g *greeter) Greet(_ context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	if req.GetName() == "" {
		return nil, triple.NewError(triple.CodeInvalidArgument, "name is empty; say who to greet")
	}
	return &greet.GreetResponse{Greeting: "Hello, " + req.GetName(), ServedBy: g.name}, nil
}

func (g *greeter) GreetServerStream(req *greet.GreetRequest, s triple.ServerStreamServer[greet.GreetResponse]) error {
	for i := range max(req.GetCount(), 1) {
		msg := fmt.Sprintf("Hello, %s (%d)", req.GetName(), i+1)
		if err := s.Send(&greet.GreetResponse{Greeting: msg, ServedBy: g.name}); err != nil {
			return err
		}
	}
	return nil
}

func (g *greeter) GreetBidiStream(s triple.BidiStreamServer[greet.GreetRequest, greet.GreetResponse]) error {
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(&greet.GreetResponse{Greeting: "Hello, " + req.GetName(), ServedBy: g.name}); err != nil {
			return err
		}
	}
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	cfg, err := config.Load(
		config.WithApplicationName("helloworld-server"),
		config.WithService(config.Service{Interface: greettriple.GreetServiceName}),
	)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	servers := tri.NewServers([]tri.Export{{
		Desc: &greettriple.GreetService_ServiceDesc,
		Impl: &greeter{name: "helloworld-server@" + host},
	}})
	a, err := app.New(cfg, app.WithServers(servers.Factory()), app.WithServing(servers.SetServing))
	if err != nil {
		return err
	}
	// Listens, registers, then waits for SIGINT/SIGTERM: unready,
	// deregister, drain, graceful shutdown.
	return a.Run(context.Background(), 10*time.Second)
}
