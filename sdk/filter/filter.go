package filter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/shoalmesh/shoal/sdk/call"
)

// UnaryInvoker sends a unary call and fills resp with the answer.
type UnaryInvoker func(ctx context.Context, info *call.Info, req, resp any) error

// StreamInvoker opens a client stream.
type StreamInvoker func(ctx context.Context, info *call.Info) (ClientStream, error)

// ClientStream is the client side of a stream.
type ClientStream interface {
	Context() context.Context
	SendMsg(m any) error
	RecvMsg(m any) error
	CloseSend() error
}

// UnaryHandler serves a unary call.
type UnaryHandler func(ctx context.Context, info *call.Info, req any) (any, error)

// StreamHandler serves a stream.
type StreamHandler func(ctx context.Context, info *call.Info, stream ServerStream) error

// ServerStream is the server side of a stream.
type ServerStream interface {
	Context() context.Context
	SendMsg(m any) error
	RecvMsg(m any) error
}

// Client is a client-side filter. Unary and Stream may be nil: the filter
// then lets that kind of call pass.
type Client struct {
	// Name identifies the filter in configuration and errors, e.g. "auth".
	Name string
	// Order places the filter in a chain: lower runs first (outermost).
	Order int
	// Unary wraps unary calls; it must call next to continue the call.
	Unary func(ctx context.Context, info *call.Info, req, resp any, next UnaryInvoker) error
	// Stream wraps stream calls.
	Stream func(ctx context.Context, info *call.Info, next StreamInvoker) (ClientStream, error)
}

// Server is a server-side filter. Unary and Stream may be nil.
type Server struct {
	Name   string
	Order  int
	Unary  func(ctx context.Context, info *call.Info, req any, next UnaryHandler) (any, error)
	Stream func(ctx context.Context, info *call.Info, stream ServerStream, next StreamHandler) error
}

// ClientChain is an ordered, immutable list of client filters.
type ClientChain struct{ filters []Client }

// NewClientChain sorts filters by Order. It fails on an empty or repeated
// name and on two filters with the same Order.
func NewClientChain(filters ...Client) (*ClientChain, error) {
	fs := slices.Clone(filters)
	slices.SortStableFunc(fs, func(a, b Client) int { return a.Order - b.Order })
	if err := check(len(fs), func(i int) (string, int) { return fs[i].Name, fs[i].Order }); err != nil {
		return nil, err
	}
	return &ClientChain{filters: fs}, nil
}

// Names returns the filter names in execution order.
func (c *ClientChain) Names() []string {
	names := make([]string, len(c.filters))
	for i, f := range c.filters {
		names[i] = f.Name
	}
	return names
}

// Unary composes the chain around final, once; call the result per call.
func (c *ClientChain) Unary(final UnaryInvoker) UnaryInvoker {
	next := final
	for i := len(c.filters) - 1; i >= 0; i-- {
		f := c.filters[i].Unary
		if f == nil {
			continue
		}
		n := next
		next = func(ctx context.Context, info *call.Info, req, resp any) error {
			return f(ctx, info, req, resp, n)
		}
	}
	return next
}

// Stream composes the chain around final, once.
func (c *ClientChain) Stream(final StreamInvoker) StreamInvoker {
	next := final
	for i := len(c.filters) - 1; i >= 0; i-- {
		f := c.filters[i].Stream
		if f == nil {
			continue
		}
		n := next
		next = func(ctx context.Context, info *call.Info) (ClientStream, error) {
			return f(ctx, info, n)
		}
	}
	return next
}

// ServerChain is an ordered, immutable list of server filters.
type ServerChain struct{ filters []Server }

// NewServerChain sorts filters by Order, with the checks of NewClientChain.
func NewServerChain(filters ...Server) (*ServerChain, error) {
	fs := slices.Clone(filters)
	slices.SortStableFunc(fs, func(a, b Server) int { return a.Order - b.Order })
	if err := check(len(fs), func(i int) (string, int) { return fs[i].Name, fs[i].Order }); err != nil {
		return nil, err
	}
	return &ServerChain{filters: fs}, nil
}

// Prepend returns a chain that runs f before this chain's filters, whatever
// their orders (for a filter that must see every call first, such as
// registry-istio's authorization check). A nil chain is an empty one. It
// fails when f has no name or one the chain already has.
func (c *ServerChain) Prepend(f Server) (*ServerChain, error) {
	var fs []Server
	if c != nil {
		fs = c.filters
	}
	all := append([]Server{f}, fs...)
	if err := check(len(all), func(i int) (string, int) { return all[i].Name, i }); err != nil {
		return nil, err
	}
	return &ServerChain{filters: all}, nil
}

// Names returns the filter names in execution order.
func (c *ServerChain) Names() []string {
	names := make([]string, len(c.filters))
	for i, f := range c.filters {
		names[i] = f.Name
	}
	return names
}

// Unary composes the chain around final, once.
func (c *ServerChain) Unary(final UnaryHandler) UnaryHandler {
	next := final
	for i := len(c.filters) - 1; i >= 0; i-- {
		f := c.filters[i].Unary
		if f == nil {
			continue
		}
		n := next
		next = func(ctx context.Context, info *call.Info, req any) (any, error) {
			return f(ctx, info, req, n)
		}
	}
	return next
}

// Stream composes the chain around final, once.
func (c *ServerChain) Stream(final StreamHandler) StreamHandler {
	next := final
	for i := len(c.filters) - 1; i >= 0; i-- {
		f := c.filters[i].Stream
		if f == nil {
			continue
		}
		n := next
		next = func(ctx context.Context, info *call.Info, ss ServerStream) error {
			return f(ctx, info, ss, n)
		}
	}
	return next
}

func check(n int, at func(int) (string, int)) error {
	var errs []error
	names := map[string]bool{}
	for i := range n {
		name, order := at(i)
		if strings.TrimSpace(name) == "" {
			errs = append(errs, fmt.Errorf("filter: a filter with order %d has no name; name every filter", order))
			continue
		}
		if names[name] {
			errs = append(errs, fmt.Errorf("filter: %q appears twice in one chain; add it once", name))
		}
		names[name] = true
		if i > 0 {
			if prev, po := at(i - 1); po == order {
				errs = append(errs, fmt.Errorf("filter: %q and %q both have order %d; give them different orders so the chain order is explicit", prev, name, order))
			}
		}
	}
	return errors.Join(errs...)
}

// Committer is a ClientStream that the consumer may still open again on
// another endpoint (a retry before the provider answered). Commit ends
// that: it returns the stream of the attempt in use, whose response
// headers and trailers are the call's.
type Committer interface {
	ClientStream
	Commit() ClientStream
}
