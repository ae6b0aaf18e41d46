package plugin

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Named is anything registered by name.
type Named interface{ Name() string }

// Set maps names to plug-ins. It is safe for concurrent use; the zero value
// is ready. Registering a name again replaces the earlier plug-in, as
// grpc-go's registries do, so applications can override a built-in.
type Set[T Named] struct {
	// Kind names the plug-in kind in errors, e.g. "balancer".
	Kind string
	mu   sync.RWMutex
	m    map[string]T
}

// Register adds or replaces p under p.Name(). It fails on an empty name.
func (s *Set[T]) Register(p T) error {
	name := p.Name()
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%s: cannot register a plug-in with an empty name; give it a Name()", s.Kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]T)
	}
	s.m[name] = p
	return nil
}

// Get returns the plug-in registered under name, or an error listing the
// registered names.
func (s *Set[T]) Get(name string) (T, error) {
	s.mu.RLock()
	p, ok := s.m[name]
	s.mu.RUnlock()
	if !ok {
		var zero T
		return zero, fmt.Errorf("%s %q is not registered; registered: %s", s.Kind, name, s.namesText())
	}
	return p, nil
}

// Names returns the registered names, sorted.
func (s *Set[T]) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.m))
	for n := range s.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (s *Set[T]) namesText() string {
	n := s.Names()
	if len(n) == 0 {
		return "none"
	}
	return strings.Join(n, ", ")
}
