package triple_test

import (
	"context"
	"fmt"
	"net"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// A server exporting a generated service under a group and version, and a
// client calling it with attachments.
func Example() {
	srv := triple.NewServer()
	_ = testpbtriple.RegisterEchoServiceHandler(srv, &echo{name: "example"},
		triple.ServiceGroup("blue"), triple.ServiceVersion("1.0.0"))
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(lis) }()
	defer srv.Shutdown(context.Background()) //nolint:errcheck // example

	cc, _ := triple.Dial("tri://" + lis.Addr().String())
	defer cc.Close()
	client := testpbtriple.NewEchoServiceClient(cc)

	ctx := triple.AppendToOutgoingContext(context.Background(), "x-tenant", "acme")
	resp, err := client.Echo(ctx, &testpb.EchoRequest{Text: "hello"},
		triple.WithGroup("blue"), triple.WithVersion("1.0.0"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.GetText(), resp.GetMetadata()["x-tenant"], resp.GetMetadata()["@group"])

	_, err = client.Echo(ctx, &testpb.EchoRequest{FailCode: int32(triple.CodeNotFound)}, triple.WithGroup("blue"))
	fmt.Println(triple.CodeOf(err))
	// Output:
	// hello acme blue
	// not_found
}
