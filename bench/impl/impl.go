// Package impl is the registry of RPC implementations the benchmark compares.
// Each implementation serves and calls greet.GreetService/Greet with the same
// payload, so that only the RPC stack differs between contenders.
package impl

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Caller makes one unary call carrying payload and checks the echo.
type Caller interface {
	Call(ctx context.Context, payload []byte) error
	Close() error
}

// Impl is one RPC stack.
type Impl struct {
	// Name is what -impl selects.
	Name string
	// Serve listens on addr (host:port, port 0 for any) and serves until ctx
	// ends. ready receives the bound address once it accepts calls.
	Serve func(ctx context.Context, addr string, ready func(bound string)) error
	// Dial returns a Caller for target (host:port). conns > 1 spreads calls
	// over that many connections where the stack supports it.
	Dial func(target string) (Caller, error)
}

var (
	mu    sync.Mutex
	impls = map[string]Impl{}
)

// Register adds an implementation; it panics on a duplicate name, a
// programming error caught at start-up.
func Register(i Impl) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := impls[i.Name]; dup {
		panic("impl: duplicate implementation " + i.Name)
	}
	impls[i.Name] = i
}

// Lookup returns the implementation called name.
func Lookup(name string) (Impl, error) {
	mu.Lock()
	defer mu.Unlock()
	i, ok := impls[name]
	if !ok {
		return Impl{}, fmt.Errorf("unknown implementation %q; known: %s", name, strings.Join(namesLocked(), ", "))
	}
	return i, nil
}

// Names lists the registered implementations.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	return namesLocked()
}

func namesLocked() []string {
	names := make([]string, 0, len(impls))
	for n := range impls {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
