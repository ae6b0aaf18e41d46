package inbound

import (
	"crypto/tls"
	"net"
	"sync"
)

// listener hands out the connections of a guarded server: plain, or TLS
// server connections (handshaked by the Triple server) under STRICT.
type listener struct {
	net.Listener
	w    *Watcher
	done chan struct{}
	once sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case <-l.w.ready:
	case <-l.done:
		return nil, net.ErrClosed
	}
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		s := l.w.state.Load()
		switch s.Mode {
		case Plaintext:
			return c, nil
		case MutualTLS:
			return tls.Server(c, l.w.tlsConfig(c.RemoteAddr().String())), nil
		default:
			l.w.log.Debug("inbound: closing a connection: not serving", "listener", l.w.name, "remote", c.RemoteAddr().String(), "reason", s.Reason)
			_ = c.Close()
		}
	}
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}
