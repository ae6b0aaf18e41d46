package filter

import (
	"errors"
	"fmt"

	"github.com/shoalmesh/shoal/sdk/internal/plugin"
)

// Registry holds filters by name, so that configuration can list them
// ("filters: {client: [auth, metrics]}"). The zero value is not ready; use
// NewRegistry.
type Registry struct {
	client plugin.Set[namedClient]
	server plugin.Set[namedServer]
}

type namedClient struct{ Client }

func (n namedClient) Name() string { return n.Client.Name }

type namedServer struct{ Server }

func (n namedServer) Name() string { return n.Server.Name }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.client.Kind = "client filter"
	r.server.Kind = "server filter"
	return r
}

// RegisterClient adds or replaces a client filter by name.
func (r *Registry) RegisterClient(f Client) error { return r.client.Register(namedClient{f}) }

// RegisterServer adds or replaces a server filter by name.
func (r *Registry) RegisterServer(f Server) error { return r.server.Register(namedServer{f}) }

// ClientChain builds a chain of the named client filters in the order
// given, ignoring their Order fields.
func (r *Registry) ClientChain(names ...string) (*ClientChain, error) {
	fs := make([]Client, 0, len(names))
	var errs []error
	for i, n := range names {
		f, err := r.client.Get(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("filter: client[%d]: %w", i, err))
			continue
		}
		f.Order = i
		fs = append(fs, f.Client)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return NewClientChain(fs...)
}

// ServerChain builds a chain of the named server filters in the order given.
func (r *Registry) ServerChain(names ...string) (*ServerChain, error) {
	fs := make([]Server, 0, len(names))
	var errs []error
	for i, n := range names {
		f, err := r.server.Get(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("filter: server[%d]: %w", i, err))
			continue
		}
		f.Order = i
		fs = append(fs, f.Server)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return NewServerChain(fs...)
}

// HasClient reports whether a client filter is registered under name.
func (r *Registry) HasClient(name string) bool {
	_, err := r.client.Get(name)
	return err == nil
}

// HasServer reports whether a server filter is registered under name.
func (r *Registry) HasServer(name string) bool {
	_, err := r.server.Get(name)
	return err == nil
}

// ClientNames lists the registered client filters.
func (r *Registry) ClientNames() []string { return r.client.Names() }

// ServerNames lists the registered server filters.
func (r *Registry) ServerNames() []string { return r.server.Names() }
