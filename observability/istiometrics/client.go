package istiometrics

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/triple"
)

// ClientOptions returns the triple client options that record calls with
// reporter="source": pass them to tri.NewTransport (or triple.Dial). They
// send the metadata exchange headers on every call and read the server's
// from its response headers, for the destination_* labels.
//
// They run per attempt, on the connection the call went to: a call the
// consumer retried on another endpoint counts once per attempt, and a call
// that found no endpoint at all is not recorded (Envoy counts both as one
// request).
func (m *Metrics) ClientOptions() []triple.ClientOption {
	return []triple.ClientOption{
		triple.WithUnaryClientInterceptors(m.UnaryClientInterceptor()),
		triple.WithStreamClientInterceptors(m.StreamClientInterceptor()),
	}
}

// clientCall is the per-call state of a unary call, pooled: triple
// writes the server's x-envoy-peer-metadata into hv without building a
// header map.
type clientCall struct {
	hv   triple.HeaderValue
	opts []triple.CallOption
}

var clientCalls = sync.Pool{New: func() any {
	return &clientCall{hv: triple.HeaderValue{Key: peer.HeaderMetadata}, opts: make([]triple.CallOption, 0, 4)}
}}

// UnaryClientInterceptor records unary calls; ClientOptions installs it.
func (m *Metrics) UnaryClientInterceptor() triple.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, invoker triple.UnaryInvoker, opts ...triple.CallOption) error {
		start := time.Now()
		c := clientCalls.Get().(*clientCall)
		c.hv.Value = ""
		c.opts = append(append(c.opts[:0], opts...), &c.hv)
		err := invoker(m.outgoing(ctx), method, req, reply, c.opts...)
		ms := millisSince(start)
		p := m.peerOf(c.hv.Value)
		respSize, respMsgs := 0, 0
		if err == nil {
			respSize, respMsgs = size(reply), 1
		}
		m.seriesFor(reporterSource, p, outcomeOf(err)).record(ms, size(req), respSize, 1, respMsgs)
		clear(c.opts)
		c.opts = c.opts[:0]
		clientCalls.Put(c)
		return err
	}
}

// outgoing adds the exchange headers to the call's outgoing metadata. The
// common case, a call without attachments, shares one read-only map.
func (m *Metrics) outgoing(ctx context.Context) context.Context {
	md, ok := triple.FromOutgoingContext(ctx)
	if !ok || len(md) == 0 {
		return triple.NewOutgoingContext(ctx, m.exchange)
	}
	if _, sent := md[peer.HeaderMetadata]; sent {
		return ctx
	}
	out := make(triple.Metadata, len(md)+len(m.exchange))
	for k, v := range md {
		out[k] = v
	}
	for k, v := range m.exchange {
		out[k] = v
	}
	return triple.NewOutgoingContext(ctx, out)
}

// StreamClientInterceptor records streams when they end (RecvMsg returns
// an error, io.EOF for success); ClientOptions installs it.
func (m *Metrics) StreamClientInterceptor() triple.StreamClientInterceptor {
	return func(ctx context.Context, desc *triple.StreamDesc, method string, streamer triple.Streamer, opts ...triple.CallOption) (triple.ClientStream, error) {
		start := time.Now()
		cs, err := streamer(m.outgoing(ctx), desc, method, opts...)
		if err != nil {
			m.seriesFor(reporterSource, m.unknownPeer, outcomeOf(err)).record(millisSince(start), 0, 0, 0, 0)
			return nil, err
		}
		return &clientStream{ClientStream: cs, m: m, start: start}, nil
	}
}

type clientStream struct {
	triple.ClientStream
	m     *Metrics
	start time.Time
	msgCounts
	done atomic.Bool
}

func (s *clientStream) SendMsg(msg any) error {
	return s.countSent(msg, s.ClientStream.SendMsg(msg))
}

func (s *clientStream) RecvMsg(msg any) error {
	err := s.countRecv(msg, s.ClientStream.RecvMsg(msg))
	if err != nil {
		s.finish(err)
	}
	return err
}

func (s *clientStream) finish(err error) {
	if !s.done.CompareAndSwap(false, true) {
		return
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	hdr, _ := s.Header()
	p := s.m.peerOf(hdr.Get(peer.HeaderMetadata))
	s.m.seriesFor(reporterSource, p, outcomeOf(err)).record(millisSince(s.start), int(s.sentBytes.Load()), int(s.recvBytes.Load()), int(s.sent.Load()), int(s.recv.Load()))
}

// msgCounts counts a stream's messages and their bytes each way; Send and
// Recv may run on different goroutines.
type msgCounts struct {
	sent, recv           atomic.Int64
	sentBytes, recvBytes atomic.Int64
}

// countSent counts msg as sent when err is nil, and returns err.
func (c *msgCounts) countSent(msg any, err error) error {
	if err == nil {
		c.sent.Add(1)
		c.sentBytes.Add(int64(size(msg)))
	}
	return err
}

// countRecv counts msg as received when err is nil, and returns err.
func (c *msgCounts) countRecv(msg any, err error) error {
	if err == nil {
		c.recv.Add(1)
		c.recvBytes.Add(int64(size(msg)))
	}
	return err
}
