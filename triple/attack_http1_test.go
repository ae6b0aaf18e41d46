package triple_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/triple"
)

// TestAttackHTTP1Slowloris holds HTTP/1 connections open the two ways a
// slowloris does: request headers that never end, and a keep-alive
// connection left idle after one answered request. The server must end
// both within its handshake and idle timeouts (the old server waited a
// fixed 10 s for headers and never closed an idle keep-alive connection),
// while a well-behaved client keeps calling.
func TestAttackHTTP1Slowloris(t *testing.T) {
	const timeout = 200 * time.Millisecond
	addr, _ := attackServer(t, nil, triple.WithHandshakeTimeout(timeout), triple.WithIdleTimeout(timeout))
	g := startGuard(t, addr)
	const conns = 100
	// Far past both timeouts, well before the 10 s the old server gave
	// headers: a connection still open by then was not ended.
	const patience = 5 * time.Second
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		idle := i%2 == 0
		wg.Go(func() {
			errs <- slowHTTP1(addr, idle, patience)
		})
	}
	wg.Wait()
	close(errs)
	bad := 0
	for err := range errs {
		if err != nil {
			bad++
			if bad <= 3 {
				t.Error(err)
			}
		}
	}
	if bad > 3 {
		t.Errorf("... %d of %d connections in all", bad, conns)
	}
	g.finish(5*conns + 10)
}

// slowHTTP1 opens one HTTP/1 connection and either sends headers that
// never end or makes one keep-alive request and goes quiet; it returns
// nil once the server has closed the connection.
func slowHTTP1(addr string, idle bool, patience time.Duration) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(patience))
	br := bufio.NewReader(c)
	what := "unfinished headers"
	if idle {
		what = "idle keep-alive connection"
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/shoal.triple.test.EchoService/Echo", strings.NewReader(`{"text":"once"}`))
		req.Header.Set("Content-Type", "application/json")
		if err := req.Write(c); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			return errors.New("the keep-alive request was not answered 200 on an open connection: " + resp.Status)
		}
	} else if _, err := io.WriteString(c, "POST /shoal.triple.test.EchoService/Echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"); err != nil {
		return err
	}
	start := time.Now()
	_, err = io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New(what + ": still open after " + time.Since(start).Round(time.Millisecond).String())
	}
	return nil // EOF or a reset: the server ended it
}
