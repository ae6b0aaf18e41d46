package istiometrics

import (
	"context"
	"time"

	"github.com/shoalmesh/shoal/observability/peer"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/triple"
)

// ServerFilter returns the server filter that records served calls with
// reporter="destination". It reads the caller's x-envoy-peer-metadata for
// the source_* labels and, when the caller sent one, answers with this
// application's exchange headers, as an Envoy sidecar does. Place it
// outermost (a low order) so that it times the whole call.
func (m *Metrics) ServerFilter(order int) filter.Server {
	return filter.Server{
		Name: FilterName, Order: order,
		Unary: func(ctx context.Context, info *call.Info, req any, next filter.UnaryHandler) (any, error) {
			start := time.Now()
			p := m.answer(ctx, info)
			resp, err := next(ctx, info, req)
			respSize, respMsgs := 0, 0
			if err == nil {
				respSize, respMsgs = size(resp), 1
			}
			m.seriesFor(reporterDestination, p, outcomeOf(err)).record(millisSince(start), size(req), respSize, 1, respMsgs)
			return resp, err
		},
		Stream: func(ctx context.Context, info *call.Info, ss filter.ServerStream, next filter.StreamHandler) error {
			start := time.Now()
			p := m.answer(ctx, info)
			ts, ok := ss.(triple.ServerStream)
			if !ok {
				// Not a Triple stream: nothing to wrap it as; count the call only.
				err := next(ctx, info, ss)
				m.seriesFor(reporterDestination, p, outcomeOf(err)).record(millisSince(start), 0, 0, 0, 0)
				return err
			}
			w := &serverStream{ServerStream: ts}
			err := next(ctx, info, w)
			m.seriesFor(reporterDestination, p, outcomeOf(err)).record(millisSince(start), int(w.recvBytes.Load()), int(w.sentBytes.Load()), int(w.recv.Load()), int(w.sent.Load()))
			return err
		},
	}
}

// answer returns the caller's peer state and, when the caller takes part
// in the exchange, sends this application's headers back.
func (m *Metrics) answer(ctx context.Context, info *call.Info) *peerState {
	v, ok := info.Attachments.Get(peer.HeaderMetadata)
	if !ok {
		if _, ok = info.Attachments.Get(peer.HeaderID); !ok {
			return m.caller(ctx, "")
		}
	}
	_ = triple.SetHeader(ctx, m.exchange) // fails only outside a Triple call, where there is no one to answer
	return m.caller(ctx, v)
}

type serverStream struct {
	triple.ServerStream
	msgCounts
}

func (s *serverStream) SendMsg(msg any) error {
	return s.countSent(msg, s.ServerStream.SendMsg(msg))
}

func (s *serverStream) RecvMsg(msg any) error {
	return s.countRecv(msg, s.ServerStream.RecvMsg(msg))
}
