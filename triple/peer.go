package triple

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
)

// Peer is the client end of a call's connection, as the server sees it.
type Peer struct {
	// Addr is the client's address.
	Addr net.Addr
	// LocalAddr is the server's address the client connected to.
	LocalAddr net.Addr
	// TLS is the connection's TLS state after the handshake (the verified
	// client certificates among it); nil on a plaintext connection.
	TLS *tls.ConnectionState
}

type peerKey struct{}

// PeerFromContext returns the connection a call arrived on, on the server
// side: interceptors use it to authenticate and authorize the caller.
func PeerFromContext(ctx context.Context) (Peer, bool) {
	switch p := ctx.Value(peerKey{}).(type) {
	case *Peer:
		return *p, true
	case Peer:
		return p, true
	}
	return Peer{}, false
}

// connPeer describes a server connection.
func connPeer(nc net.Conn) Peer {
	p := Peer{Addr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr()}
	if tc, ok := nc.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		p.TLS = &cs
	}
	return p
}

// requestPeer describes the connection of a call served through net/http,
// or through ServeHTTP from an HTTP/2 connection (which knows its peer).
func requestPeer(r *http.Request) Peer {
	if p, ok := PeerFromContext(r.Context()); ok {
		return p
	}
	p := Peer{TLS: r.TLS}
	if a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		p.Addr = a
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		p.LocalAddr = la
	}
	return p
}
