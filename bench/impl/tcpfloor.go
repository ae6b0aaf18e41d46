package impl

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The tcp-floor contender is no RPC stack: a raw TCP ping-pong, a 4-byte
// big-endian length and the payload, echoed back the same way. It costs one
// write and (mostly) one read per side and call, with no framing, headers,
// codec or demultiplexing, so it is the floor every stack on the same
// loopback pays. Each concurrent caller gets a connection of its own (at
// c=64, 64 connections): pipelining many calls on one connection would need
// a demultiplexer, which is protocol work, and would batch writes, which
// measures write coalescing rather than the kernel round trip.

func init() {
	Register(Impl{Name: "tcp-floor", Serve: serveFloor, Dial: dialFloor})
}

// maxFloorFrame bounds the length prefix a floor server accepts; a larger one
// closes the connection.
const maxFloorFrame = 4 << 20

// floorServer echoes length-prefixed frames and counts them.
type floorServer struct {
	echoed atomic.Int64 // whole frames read and answered
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func serveFloor(ctx context.Context, addr string, ready func(string)) error {
	return new(floorServer).serve(ctx, addr, ready)
}

// serve accepts on addr until ctx ends, then closes every connection and
// waits for their goroutines.
func (s *floorServer) serve(ctx context.Context, addr string, ready func(string)) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.conns = map[net.Conn]struct{}{}
	stop := context.AfterFunc(ctx, func() {
		_ = lis.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	ready(lis.Addr().String())
	for {
		c, err := lis.Accept()
		if err != nil {
			s.wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			_ = s.echo(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		})
	}
}

// echo answers every frame on c until the peer closes (nil) or breaks the
// framing (an error).
func (s *floorServer) echo(c net.Conn) error {
	br := bufio.NewReaderSize(c, 64<<10)
	var buf []byte
	for {
		n, err := readFloorFrame(br, &buf)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		// Counted before the write, so a caller that saw its echo sees it counted.
		s.echoed.Add(1)
		if _, err := c.Write(buf[:4+n]); err != nil {
			return err
		}
	}
}

// readFloorFrame reads one frame into *buf, prefix included, growing it as
// needed, and returns the payload length. A clean EOF before a frame starts
// is io.EOF.
func readFloorFrame(br *bufio.Reader, buf *[]byte) (int, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFloorFrame {
		return 0, fmt.Errorf("impl: tcp-floor frame of %d bytes, more than the %d allowed", n, maxFloorFrame)
	}
	if cap(*buf) < 4+int(n) {
		*buf = make([]byte, 4+int(n))
	}
	b := (*buf)[:4+int(n)]
	copy(b, hdr[:])
	if _, err := io.ReadFull(br, b[4:]); err != nil {
		return 0, fmt.Errorf("impl: tcp-floor frame cut short: %w", io.ErrUnexpectedEOF)
	}
	*buf = b
	return int(n), nil
}

// floorConn is one client connection with its buffers.
type floorConn struct {
	nc  net.Conn
	br  *bufio.Reader
	out []byte
	in  []byte
}

// floorCaller hands each concurrent call a connection of its own: an idle
// one, or a new one when none is idle. A connection that failed is closed,
// never reused.
type floorCaller struct {
	target string
	mu     sync.Mutex
	idle   []*floorConn
	closed bool
}

func dialFloor(target string) (Caller, error) {
	c := &floorCaller{target: target}
	// Dial one connection now so a wrong target fails here, not per call.
	fc, err := c.dial(context.Background())
	if err != nil {
		return nil, err
	}
	c.idle = append(c.idle, fc)
	return c, nil
}

func (c *floorCaller) dial(ctx context.Context) (*floorConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.target)
	if err != nil {
		return nil, err
	}
	return &floorConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}, nil
}

var errFloorClosed = errors.New("impl: tcp-floor caller is closed")

func (c *floorCaller) get(ctx context.Context) (*floorConn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errFloorClosed
	}
	if n := len(c.idle); n > 0 {
		fc := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return fc, nil
	}
	c.mu.Unlock()
	return c.dial(ctx)
}

func (c *floorCaller) put(fc *floorConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = fc.nc.Close()
		return
	}
	c.idle = append(c.idle, fc)
}

// Call sends payload as one frame and checks the echo.
func (c *floorCaller) Call(ctx context.Context, payload []byte) error {
	if len(payload) > maxFloorFrame {
		return fmt.Errorf("impl: tcp-floor payload of %d bytes, more than the %d allowed", len(payload), maxFloorFrame)
	}
	fc, err := c.get(ctx)
	if err != nil {
		return err
	}
	if err := fc.roundTrip(ctx, payload); err != nil {
		_ = fc.nc.Close()
		return err
	}
	c.put(fc)
	return nil
}

func (fc *floorConn) roundTrip(ctx context.Context, payload []byte) error {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Time{}
	}
	if err := fc.nc.SetDeadline(dl); err != nil {
		return err
	}
	fc.out = binary.BigEndian.AppendUint32(fc.out[:0], uint32(len(payload)))
	fc.out = append(fc.out, payload...)
	if _, err := fc.nc.Write(fc.out); err != nil {
		return err
	}
	n, err := readFloorFrame(fc.br, &fc.in)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("impl: tcp-floor server closed the connection: %w", io.ErrUnexpectedEOF)
		}
		return err
	}
	return checkEcho(payload, fc.in[4:4+n])
}

// Close closes every idle connection; connections in use close when their
// call returns.
func (c *floorCaller) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for _, fc := range c.idle {
		errs = append(errs, fc.nc.Close())
	}
	c.idle = nil
	return errors.Join(errs...)
}
