package xdsclient

import "sync"

// serializer runs callbacks one at a time, in order, on its own goroutine,
// so watchers are never called with the client's lock held and never
// concurrently.
type serializer struct {
	mu     sync.Mutex
	queue  []func()
	wake   chan struct{}
	closed bool
	done   chan struct{}
}

func newSerializer() *serializer {
	s := &serializer{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	return s
}

// schedule queues f; it is dropped after close.
func (s *serializer) schedule(f func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, f)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *serializer) run() {
	defer close(s.done)
	for range s.wake {
		for {
			s.mu.Lock()
			if s.closed {
				s.queue = nil
				s.mu.Unlock()
				return
			}
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			f := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.mu.Unlock()
			f()
		}
	}
}

// close drops pending callbacks and waits for a running one to return.
func (s *serializer) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.done
}
