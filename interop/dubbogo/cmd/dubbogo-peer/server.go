package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/protocol"
	"dubbo.apache.org/dubbo-go/v3/protocol/triple"
	tri "dubbo.apache.org/dubbo-go/v3/protocol/triple/triple_protocol"
	"dubbo.apache.org/dubbo-go/v3/server"

	"github.com/shoalmesh/shoal/interop/dubbogo/driver"
	"github.com/shoalmesh/shoal/interop/dubbogo/greet"
	"github.com/shoalmesh/shoal/interop/dubbogo/greet/greettriple"
)

func serve(port int, out io.Writer) error {
	srv, err := server.NewServer(server.WithServerProtocol(
		protocol.WithTriple(triple.WithMaxServerRecvMsgSize("16MiB"), triple.WithMaxServerSendMsgSize("16MiB")),
		protocol.WithIp("127.0.0.1"),
		protocol.WithPort(port),
	))
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	plain := &GreetHandler{ref: "greet", servedBy: "dubbo-go@" + addr}
	if err := greettriple.Register(srv, plain); err != nil {
		return err
	}
	grouped := &GreetHandler{ref: "greet-" + driver.Group + "-" + driver.Version, servedBy: plain.servedBy}
	if err := greettriple.Register(srv, grouped, server.WithGroup(driver.Group), server.WithVersion(driver.Version)); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
		cancel()
	}()
	served := make(chan error, 1)
	go func() { served <- srv.ServeContext(ctx) }()
	if err := waitListening(addr, served); err != nil {
		return err
	}
	fmt.Fprintf(out, "READY %s\n", addr)
	if err := <-served; err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func waitListening(addr string, served <-chan error) error {
	for range 200 {
		select {
		case err := <-served:
			return fmt.Errorf("the dubbo-go server stopped before serving: %w", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			return c.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after 10s", addr)
}

// GreetHandler serves greet.GreetService (dubbo-go exports only exported
// types). dubbo-go keys a server's services by Reference, so the plain and
// the grouped export need different ones.
type GreetHandler struct{ ref, servedBy string }

// Reference implements dubbo-go's common.ReferencedRPCService.
func (h *GreetHandler) Reference() string { return h.ref }

// seen reports the attachments dubbo-go hands the handler (every request
// header, lower-cased), with the group and version under their short names.
func seen(ctx context.Context, hdr map[string][]string) map[string]string {
	out := map[string]string{}
	add := func(k string, v string) {
		switch k = strings.ToLower(k); k {
		case "tri-service-group":
			out["group"] = v
		case "tri-service-version":
			out["version"] = v
		default:
			out[k] = v
		}
	}
	if att, ok := ctx.Value(constant.AttachmentKey).(map[string]any); ok {
		for k, v := range att {
			switch v := v.(type) {
			case string:
				add(k, v)
			case []string:
				if len(v) > 0 {
					add(k, v[0])
				}
			}
		}
	}
	for k, v := range hdr {
		if _, dup := out[strings.ToLower(k)]; !dup && len(v) > 0 {
			add(k, v[0])
		}
	}
	return out
}

func reply(ctx context.Context, req *greet.GreetRequest, servedBy string, hdr map[string][]string) (*greet.GreetResponse, error) {
	resp, code, msg := driver.Reply(ctx, req, servedBy, seen(ctx, hdr))
	if resp == nil {
		return nil, tri.NewError(tri.Code(code), errors.New(msg))
	}
	return resp, nil
}

func (h *GreetHandler) Greet(ctx context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	return reply(ctx, req, h.servedBy, nil)
}

func (h *GreetHandler) GreetServerStream(ctx context.Context, req *greet.GreetRequest, s *tri.ServerStream) error {
	for range max(req.GetCount(), 1) {
		resp, err := reply(ctx, req, h.servedBy, nil)
		if err != nil {
			return err
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func (h *GreetHandler) GreetClientStream(ctx context.Context, s *tri.ClientStream) (*greet.GreetResponse, error) {
	var reqs []*greet.GreetRequest
	for s.Receive(new(greet.GreetRequest)) {
		reqs = append(reqs, s.Msg().(*greet.GreetRequest))
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return &greet.GreetResponse{Greeting: driver.JoinNames(reqs), ServedBy: h.servedBy, Seen: seen(ctx, s.RequestHeader())}, nil
}

func (h *GreetHandler) GreetBidiStream(ctx context.Context, s *tri.BidiStream) error {
	for {
		req := new(greet.GreetRequest)
		if err := s.Receive(req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		resp, err := reply(ctx, req, h.servedBy, s.RequestHeader())
		if err != nil {
			return err
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}
