package triple_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// Keepalive: each side with WithKeepalive(d) PINGs after d without reading
// a frame and drops the connection when the PING is still unanswered d
// later. The tests put h2Proxy, a loopback TCP proxy that reads the HTTP/2
// frames it forwards, between a real client and a real server: it counts
// the PINGs, and freeze turns it into a black hole that keeps both TCP
// connections open but forwards nothing, as a dead peer or a lost route does.

// Directions through the proxy.
const (
	toServer = 0
	toClient = 1
)

type proxyStats struct {
	accepted int
	pings    [2]int // PINGs forwarded, by direction
	acks     [2]int // PING acks forwarded, by direction
	dropped  [2]int // PINGs swallowed while frozen, by direction
}

type h2Proxy struct {
	t      *testing.T
	lis    net.Listener
	target string
	wg     sync.WaitGroup

	mu      sync.Mutex
	frozen  bool
	conns   []net.Conn
	stats   proxyStats
	changed chan struct{} // closed and replaced whenever stats change
}

// startProxy forwards a loopback port to target until the test ends.
func startProxy(t *testing.T, target string) *h2Proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &h2Proxy{t: t, lis: lis, target: target, changed: make(chan struct{})}
	p.wg.Go(p.acceptLoop)
	t.Cleanup(p.close)
	return p
}

func (p *h2Proxy) addr() string { return p.lis.Addr().String() }

func (p *h2Proxy) acceptLoop() {
	for {
		down, err := p.lis.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.t.Errorf("proxy: dial %s: %v", p.target, err)
			_ = down.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, down, up)
		p.update(func(s *proxyStats) { s.accepted++ })
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(toServer, up, down) })
		p.wg.Go(func() { p.pipe(toClient, down, up) })
	}
}

// update changes the stats and wakes await; call with mu held.
func (p *h2Proxy) update(f func(*proxyStats)) {
	f(&p.stats)
	close(p.changed)
	p.changed = make(chan struct{})
}

// pipe copies frames from src to dst, counting PINGs; while frozen it
// reads and drops them. A side that ends ends both, unless frozen: a black
// hole passes on no FIN either.
func (p *h2Proxy) pipe(dir int, dst, src net.Conn) {
	br := bufio.NewReader(src)
	defer func() {
		p.mu.Lock()
		frozen := p.frozen
		p.mu.Unlock()
		if !frozen {
			_ = src.Close()
			_ = dst.Close()
		}
	}()
	if dir == toServer {
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(br, preface); err != nil {
			return
		}
		if _, err := dst.Write(preface); err != nil {
			return
		}
	}
	var buf []byte
	for {
		var hdr [9]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		buf = append(append(buf[:0], hdr[:]...), make([]byte, n)...)
		if _, err := io.ReadFull(br, buf[9:]); err != nil {
			return
		}
		ping := http2.FrameType(hdr[3]) == http2.FramePing
		ack := http2.Flags(hdr[4]).Has(http2.FlagPingAck)
		p.mu.Lock()
		frozen := p.frozen
		switch {
		case ping && frozen && !ack:
			p.update(func(s *proxyStats) { s.dropped[dir]++ })
		case ping && !frozen && ack:
			p.update(func(s *proxyStats) { s.acks[dir]++ })
		case ping && !frozen:
			p.update(func(s *proxyStats) { s.pings[dir]++ })
		}
		p.mu.Unlock()
		if frozen {
			continue
		}
		if _, err := dst.Write(buf); err != nil {
			return
		}
	}
}

// freeze stops forwarding on every connection, open or new; thaw undoes it
// for new connections (a frozen one may have lost frames).
func (p *h2Proxy) freeze() { p.setFrozen(true) }
func (p *h2Proxy) thaw()   { p.setFrozen(false) }

func (p *h2Proxy) setFrozen(v bool) {
	p.mu.Lock()
	p.frozen = v
	p.mu.Unlock()
}

func (p *h2Proxy) snapshot() proxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// await waits until cond holds for the stats, failing after 10 s.
func (p *h2Proxy) await(what string, cond func(proxyStats) bool) {
	p.t.Helper()
	limit := time.NewTimer(10 * time.Second)
	defer limit.Stop()
	for {
		p.mu.Lock()
		s, ch := p.stats, p.changed
		p.mu.Unlock()
		if cond(s) {
			return
		}
		select {
		case <-ch:
		case <-limit.C:
			p.t.Fatalf("proxy: %s did not happen within 10s (%+v)", what, s)
		}
	}
}

func (p *h2Proxy) close() {
	_ = p.lis.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// detectSlack is how much later than 2*keepalive after the last frame read
// a dead peer may be noticed: scheduling on a loaded machine under -race.
// Without keepalive the calls below would wait forever.
const detectSlack = 3 * time.Second

func TestKeepaliveClientDropsSilentServer(t *testing.T) {
	const ka = 100 * time.Millisecond
	p := startProxy(t, startServer(t, nil, nil))
	client := testpbtriple.NewEchoServiceClient(dial(t, p.addr(), triple.WithKeepalive(ka)))
	st, err := client.EchoBidi(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testpb.EchoRequest{Text: "alive"}); err != nil {
		t.Fatal(err)
	}
	if resp, err := st.Recv(); err != nil || resp.GetText() != "alive" {
		t.Fatalf("before the freeze: %v %v", resp, err)
	}
	p.freeze()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := st.Recv()
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(2*ka + detectSlack):
		t.Fatalf("the stream still waits %v after the server went silent (keepalive %v)", time.Since(start), ka)
	}
	elapsed := time.Since(start)
	t.Logf("dead server noticed after %v (keepalive %v)", elapsed, ka)
	if triple.CodeOf(err) != triple.CodeUnavailable || !strings.Contains(err.Error(), "keepalive") {
		t.Fatalf("stream on a dead connection: %v, want UNAVAILABLE naming keepalive", err)
	}
	if s := p.snapshot(); s.dropped[toServer] == 0 {
		t.Fatalf("the client closed the connection without sending a PING first (%+v)", s)
	}
	// The next call dials a new connection.
	p.thaw()
	if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "again"}); err != nil {
		t.Fatalf("call after the dead connection: %v", err)
	}
	if n := p.snapshot().accepted; n != 2 {
		t.Fatalf("%d connections, want 2 (the dead one and a new one)", n)
	}
}

func TestKeepaliveServerDropsSilentClient(t *testing.T) {
	const ka = 100 * time.Millisecond
	be := &blockEcho{started: make(chan struct{}, 1), ended: make(chan error, 1)}
	addr := startServer(t, []triple.ServerOption{triple.WithKeepalive(ka)}, func(s *triple.Server) {
		_ = testpbtriple.RegisterEchoServiceHandler(s, be)
	})
	p := startProxy(t, addr)
	client := testpbtriple.NewEchoServiceClient(dial(t, p.addr()))
	st, err := client.EchoBidi(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	<-be.started
	p.freeze()
	start := time.Now()
	select {
	case err := <-be.ended:
		t.Logf("dead client noticed after %v (keepalive %v)", time.Since(start), ka)
		if err == nil {
			t.Fatal("the handler's context ended without an error")
		}
	case <-time.After(2*ka + detectSlack):
		t.Fatalf("the handler still runs %v after the client went silent (keepalive %v)", time.Since(start), ka)
	}
	if s := p.snapshot(); s.dropped[toClient] == 0 {
		t.Fatalf("the server closed the connection without sending a PING first (%+v)", s)
	}
	// The client, without keepalive, learns only when the proxy goes too.
	p.close()
	if _, err := st.Recv(); triple.CodeOf(err) != triple.CodeUnavailable {
		t.Fatalf("client stream after the proxy closed: %v, want UNAVAILABLE", err)
	}
}

func TestKeepaliveHealthyIdleConnectionStays(t *testing.T) {
	const ka = 50 * time.Millisecond
	const rounds = 4
	tests := []struct {
		name           string
		server, client bool
		answered       func(proxyStats) int // PINGs sent and answered
	}{
		{"client", false, true, func(s proxyStats) int { return min(s.pings[toServer], s.acks[toClient]) }},
		{"server", true, false, func(s proxyStats) int { return min(s.pings[toClient], s.acks[toServer]) }},
		{"both", true, true, func(s proxyStats) int {
			return min(s.pings[toServer], s.acks[toClient]) + min(s.pings[toClient], s.acks[toServer])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sopts []triple.ServerOption
			var copts []triple.ClientOption
			if tt.server {
				sopts = append(sopts, triple.WithKeepalive(ka))
			}
			if tt.client {
				copts = append(copts, triple.WithKeepalive(ka))
			}
			p := startProxy(t, startServer(t, sopts, nil))
			client := testpbtriple.NewEchoServiceClient(dial(t, p.addr(), copts...))
			if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "first"}); err != nil {
				t.Fatal(err)
			}
			// PINGs go out only after ka without frames: rounds of them
			// mean the connection sat idle for rounds intervals.
			p.await("answered keepalive PINGs", func(s proxyStats) bool { return tt.answered(s) >= rounds })
			if _, err := client.Echo(ctxT(t), &testpb.EchoRequest{Text: "after idling"}); err != nil {
				t.Fatalf("call after idling: %v", err)
			}
			if s := p.snapshot(); s.accepted != 1 {
				t.Fatalf("%d connections, want the first one kept (%+v)", s.accepted, s)
			}
		})
	}
}
