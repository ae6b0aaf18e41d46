package impl

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// startFloor serves a floorServer on loopback until the test ends.
func startFloor(t *testing.T) (*floorServer, string) {
	t.Helper()
	s := new(floorServer)
	return s, startServing(t, s.serve)
}

func TestFloorEchoesAndCounts(t *testing.T) {
	s, addr := startFloor(t)
	c, err := dialFloor(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Sizes around the 64 KiB read buffer, and an empty frame.
	sizes := []int{0, 1, 64, 1024, 64<<10 - 4, 64 << 10, 200 << 10}
	for _, n := range sizes {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		if err := c.Call(context.Background(), p); err != nil {
			t.Fatalf("call with %d bytes: %v", n, err)
		}
	}
	// Concurrent callers each get a connection of their own.
	const workers, calls = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range calls {
				if err := c.Call(context.Background(), []byte("ping")); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, want := s.echoed.Load(), int64(len(sizes)+workers*calls); got != want {
		t.Fatalf("server echoed %d frames, want %d", got, want)
	}
	fc := c.(*floorCaller)
	fc.mu.Lock()
	idle := len(fc.idle)
	fc.mu.Unlock()
	if idle < 1 || idle > workers {
		t.Fatalf("%d idle connections after %d concurrent callers, want 1..%d", idle, workers, workers)
	}
}

func TestFloorServerDropsOversizeFrame(t *testing.T) {
	s, addr := startFloor(t)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(binary.BigEndian.AppendUint32(nil, maxFloorFrame+1)); err != nil {
		t.Fatal(err)
	}
	if err := nc.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := nc.Read(make([]byte, 8)); !errors.Is(err, io.EOF) {
		t.Fatalf("read after an oversize prefix: %d bytes, %v; want the server to close (EOF)", n, err)
	}
	if got := s.echoed.Load(); got != 0 {
		t.Fatalf("server echoed %d frames, want 0", got)
	}
	// The server still serves other connections.
	c, err := dialFloor(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Call(context.Background(), []byte("after")); err != nil {
		t.Fatal(err)
	}
}

// fakeFloorServer is an in-process fake: it answers each frame with reply
// (which may corrupt or withhold the echo) and counts the connections.
func fakeFloorServer(t *testing.T, reply func(nc net.Conn, frame []byte) error) (addr string, accepted func() int) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		n     int
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				var buf []byte
				for {
					m, err := readFloorFrame(br, &buf)
					if err != nil || reply(nc, buf[:4+m]) != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return lis.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func TestFloorCallerRejectsWrongEcho(t *testing.T) {
	addr, accepted := fakeFloorServer(t, func(nc net.Conn, frame []byte) error {
		frame[len(frame)-1] ^= 0xff
		_, err := nc.Write(frame)
		return err
	})
	c, err := dialFloor(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 2 {
		if err := c.Call(context.Background(), []byte("hello")); !errors.Is(err, errEcho) {
			t.Fatalf("call %d: %v, want %v", i, err, errEcho)
		}
	}
	// A connection that failed is never reused: the second call dialled anew.
	if got := accepted(); got != 2 {
		t.Fatalf("%d connections accepted for 2 failed calls, want 2", got)
	}
}

func TestFloorCallerServerCloses(t *testing.T) {
	addr, _ := fakeFloorServer(t, func(net.Conn, []byte) error { return errors.New("hang up") })
	c, err := dialFloor(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Call(context.Background(), []byte("hello")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("call to a server that hangs up: %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

func TestFloorCallerTimesOut(t *testing.T) {
	release := make(chan struct{})
	addr, _ := fakeFloorServer(t, func(net.Conn, []byte) error { <-release; return errors.New("done") })
	defer close(release)
	c, err := dialFloor(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var ne net.Error
	if err := c.Call(ctx, []byte("hello")); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("call to a server that never answers: %v, want a timeout", err)
	}
}

func TestFloorDialFails(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	if _, err := dialFloor(addr); err == nil {
		t.Fatal("dialFloor to a closed port succeeded")
	}
}

func TestFloorCallerClosed(t *testing.T) {
	_, addr := startFloor(t)
	c, err := dialFloor(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(context.Background(), []byte("x")); !errors.Is(err, errFloorClosed) {
		t.Fatalf("call after Close: %v, want %v", err, errFloorClosed)
	}
}
