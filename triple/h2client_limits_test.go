package triple_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// TestClientAtMost100StreamsBeforeSettings: until the server's SETTINGS
// arrive, a ClientConn keeps at most 100 streams open (RFC 9113's lowest
// recommended limit, grpc-go's assumption too), so that a server with a
// limit refuses none of them. The server is an in-process fake written on
// the Framer: it never sends SETTINGS and checks on every HEADERS that no
// more than 100 streams are open. With 100 open it sends a PING and
// answers the oldest stream only at the ACK, so that every HEADERS the
// client sent before it saw that answer is counted against the 100.
func TestClientAtMost100StreamsBeforeSettings(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	fakeErr := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	const calls = 300
	wg.Go(func() { fakeErr <- fakeNoSettingsServer(lis, calls) })

	cc := dial(t, lis.Addr().String())
	client := testpbtriple.NewEchoServiceClient(cc)
	var cwg sync.WaitGroup
	codes := make(chan triple.Code, calls)
	for range calls {
		cwg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := client.Echo(ctx, &testpb.EchoRequest{})
			codes <- triple.CodeOf(err)
		})
	}
	cwg.Wait()
	close(codes)
	for c := range codes {
		if c != triple.CodeNotFound {
			t.Errorf("call ended with %v, want the fake's NOT_FOUND", c)
			break
		}
	}
	_ = cc.Close()
	if err := <-fakeErr; err != nil {
		t.Fatal(err)
	}
}

// fakeNoSettingsServer serves one connection as described above, and
// answers every stream once calls streams came; it returns an error when
// the client opens a 101st stream.
func fakeNoSettingsServer(lis net.Listener, calls int) error {
	nc, err := lis.Accept()
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(nc, preface); err != nil {
		return err
	}
	fr := http2.NewFramer(nc, nc)
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for _, f := range [][2]string{{":status", "200"}, {"content-type", "application/grpc"}, {"grpc-status", "5"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	trailersOnly := bytes.Clone(hbuf.Bytes())
	var open []uint32
	seen := 0
	answer := func(id uint32) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: trailersOnly, EndStream: true, EndHeaders: true})
	}
	pinged := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return nil // the client closed: done
		}
		h, ok := f.(*http2.HeadersFrame)
		if !ok {
			p, ok := f.(*http2.PingFrame)
			switch {
			case ok && !p.IsAck():
				_ = fr.WritePing(true, p.Data)
			case ok && p.Data == syncPing:
				pinged = false
				if len(open) == 100 {
					if err := answer(open[0]); err != nil {
						return err
					}
					open = open[1:]
				}
			}
			continue
		}
		open = append(open, h.StreamID)
		seen++
		if len(open) > 100 {
			return fmt.Errorf("the client opened stream %d with %d streams open and no SETTINGS from the server", h.StreamID, len(open)-1)
		}
		if len(open) == 100 && !pinged {
			pinged = true
			if err := fr.WritePing(false, syncPing); err != nil {
				return err
			}
		}
		if seen == calls {
			for _, id := range open {
				if err := answer(id); err != nil {
					return err
				}
			}
			open = nil
		}
	}
}
