package registratione2e_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/internal/e2etest"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/xds" // the xds:/// resolver, as a grpc-go user enables it

	"github.com/shoalmesh/shoal/proto/greet"
)

// TestMain also runs this binary's child roles: a provider (SHOAL_E2E_ROLE=
// provider) and grpc-go's xDS client (SHOAL_E2E_ROLE=grpcgo), which reads its
// bootstrap from the environment at start as any grpc-go program does.
func TestMain(m *testing.M) {
	switch os.Getenv("SHOAL_E2E_ROLE") {
	case "provider":
		os.Exit(runProvider())
	case "grpcgo":
		os.Exit(runGRPCGoClient())
	}
	goleak.VerifyTestMain(m, e2etest.IgnoreControlPlane...)
}

// runGRPCGoClient calls SHOAL_E2E_TARGET 20 times with grpc-go and prints
// who served each call.
func runGRPCGoClient() int {
	target := os.Getenv("SHOAL_E2E_TARGET")
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("FAILED", err)
		return 1
	}
	defer func() { _ = cc.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c := greet.NewGreetServiceClient(cc)
	for range 20 {
		resp, err := c.Greet(ctx, &greet.GreetRequest{Name: "grpc-go"}, grpc.WaitForReady(true))
		if err != nil {
			fmt.Println("FAILED", err)
			return 1
		}
		fmt.Println("SERVED_BY", resp.GetServedBy())
	}
	return 0
}
