package consumer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/internal/memnet"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/registry/direct"
)

// A reference to greet.GreetService over two fixed provider URLs, round
// robin between them. memnet stands in for the network; real programs
// pass tri.NewTransport() and usually the file registry.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := memnet.New()
	for _, port := range []int{50091, 50092} {
		s := n.NewServer("127.0.0.1", port)
		s.Handle("/greet.GreetService/Greet", func(_ context.Context, info *call.Info, req any) (any, error) {
			return fmt.Sprintf("hello %s from %d (user %s)", req, port, info.Attachments["x-user"]), nil
		})
		if _, err := s.Listen(ctx); err != nil {
			fmt.Println(err)
			return
		}
		defer func() { _ = s.Shutdown(ctx) }()
	}
	d, err := direct.New("tri://127.0.0.1:50091/greet.GreetService", "tri://127.0.0.1:50092/greet.GreetService")
	if err != nil {
		fmt.Println(err)
		return
	}
	ref, err := consumer.New(registry.Key{Interface: "greet.GreetService"}, d, n, consumer.WithTimeout(time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ref.Close()

	ctx = call.WithAttachments(ctx, call.Attachments{"x-user": "gopher"})
	seen := map[string]bool{}
	for range 4 {
		var out string
		if err := ref.Invoke(ctx, "Greet", "world", &out); err != nil {
			fmt.Println(err)
			return
		}
		seen[out] = true
	}
	fmt.Println(len(seen), "providers answered")
	fmt.Println(seen["hello world from 50091 (user gopher)"], seen["hello world from 50092 (user gopher)"])
	// Output:
	// 2 providers answered
	// true true
}
