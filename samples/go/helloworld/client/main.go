// Command client calls greet.GreetService by interface name only: Shoal finds
// the providers (here through the embedded file registry, no control plane),
// balances over them and retries on failures.
//
//	go run ./samples/go/helloworld/client -name Ada -n 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/tri"
)

func main() {
	name := flag.String("name", "Shoal", "who to greet")
	n := flag.Int("n", 3, "how many unary calls to make")
	wait := flag.Duration("wait", 10*time.Second, "how long to wait for a provider to appear")
	flag.Parse()
	if err := run(*name, *n, *wait); err != nil {
		log.Fatal(err)
	}
}

func run(name string, n int, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait+30*time.Second)
	defer cancel()
	cfg, err := config.Load(
		config.WithApplicationName("helloworld-client"),
		config.WithReference(config.Reference{Interface: greettriple.GreetServiceName}),
	)
	if err != nil {
		return err
	}
	a, err := app.New(cfg, app.WithTransport(tri.NewTransport()))
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	defer a.Stop(context.Background()) //nolint:errcheck // best effort on exit
	ref, err := a.Reference(greettriple.GreetServiceName)
	if err != nil {
		return err
	}
	client := greettriple.NewGreetServiceClient(tri.NewClient(ref))

	// A provider may still be starting: retry the first call for a while.
	deadline := time.Now().Add(wait)
	for i := 0; i < n; i++ {
		resp, err := client.Greet(ctx, &greet.GreetRequest{Name: name})
		if err != nil {
			if i == 0 && time.Now().Before(deadline) {
				i--
				time.Sleep(200 * time.Millisecond)
				continue
			}
			return fmt.Errorf("call greet.GreetService/Greet: %w", err)
		}
		fmt.Printf("%s (served by %s)\n", resp.GetGreeting(), resp.GetServedBy())
	}

	stream, err := client.GreetServerStream(ctx, &greet.GreetRequest{Name: name, Count: 3})
	if err != nil {
		return fmt.Errorf("call greet.GreetService/GreetServerStream: %w", err)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("call greet.GreetService/GreetServerStream: %w", err)
		}
		fmt.Println(resp.GetGreeting())
	}
}
