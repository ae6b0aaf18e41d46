package inbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/shoalmesh/shoal/triple"

	"github.com/shoalmesh/shoal/registry-istio/authz"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
)

// Mode is how a server treats new connections.
type Mode int

// The modes, from istiod's inbound listener.
const (
	// NotServing: no usable listener (none yet, none at all, or the first
	// version was refused); connections are closed.
	NotServing Mode = iota
	// Plaintext: no TLS (no PeerAuthentication, PERMISSIVE or DISABLE).
	Plaintext
	// MutualTLS: PeerAuthentication STRICT.
	MutualTLS
)

func (m Mode) String() string {
	switch m {
	case Plaintext:
		return "plaintext"
	case MutualTLS:
		return "mutual TLS"
	}
	return "not serving"
}

// State is what a watcher applies now.
type State struct {
	Mode Mode
	// Listener is the validated listener (nil while not serving).
	Listener *xdsresource.InboundListener
	// Reason says why the server is not serving.
	Reason string
	engine *authz.Engine
}

// Watcher follows the inbound listener of one serving address.
type Watcher struct {
	name string
	src  *identity.Source
	log  *slog.Logger

	state    atomic.Pointer[State]
	ready    chan struct{}
	once     sync.Once
	cancel   func()
	updates  atomic.Uint64
	notified chan struct{} // closed and replaced on every update
	nmu      sync.Mutex
}

func watch(c *xdsclient.Client, addr string, src *identity.Source, log *slog.Logger) *Watcher {
	w := &Watcher{
		name: xdsresource.InboundListenerPrefix + addr, src: src, log: log,
		ready: make(chan struct{}), notified: make(chan struct{}),
	}
	w.state.Store(&State{Mode: NotServing, Reason: "waiting for istiod's first answer about " + w.name})
	w.cancel = c.WatchListener(w.name, xdsclient.WatcherFuncs[*xdsresource.Listener]{
		OnChanged:  w.onListener,
		OnError:    w.onError,
		OnNotFound: w.onMissing,
	})
	return w
}

// Name is the listener's xDS name.
func (w *Watcher) Name() string { return w.name }

// State returns what the watcher applies now.
func (w *Watcher) State() State { return *w.state.Load() }

// Ready waits for istiod's first answer (a listener, its absence, or a
// refused first version), until ctx ends.
func (w *Watcher) Ready(ctx context.Context) error {
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("inbound: no answer from istiod about %s: %w", w.name, ctx.Err())
	}
}

// Changed returns a channel closed at the next update of the state, for
// tests and tools that wait for a change.
func (w *Watcher) Changed() <-chan struct{} {
	w.nmu.Lock()
	defer w.nmu.Unlock()
	return w.notified
}

func (w *Watcher) set(s *State) {
	w.state.Store(s)
	w.updates.Add(1)
	w.once.Do(func() { close(w.ready) })
	w.nmu.Lock()
	close(w.notified)
	w.notified = make(chan struct{})
	w.nmu.Unlock()
}

func (w *Watcher) onListener(l *xdsresource.Listener) {
	if l.Inbound == nil {
		w.onError(fmt.Errorf("%s is a client-side listener, not an inbound one", w.name))
		return
	}
	s := &State{Mode: Plaintext, Listener: l.Inbound, engine: authz.New(l.Inbound.FilterChain.RBAC)}
	if l.Inbound.FilterChain.TLS != nil {
		s.Mode = MutualTLS
		if w.src == nil {
			s = &State{Mode: NotServing, Reason: "PeerAuthentication STRICT needs a workload certificate, and the server has no identity.Source: pass one to inbound.New"}
		}
	}
	w.log.Info("inbound: applying istiod's listener", "listener", w.name, "mode", s.Mode.String(), "rbac_policies", s.engine.Policies(), "reason", s.Reason)
	w.set(s)
}

func (w *Watcher) onError(err error) {
	if cur := w.state.Load(); cur.Listener != nil {
		w.log.Warn("inbound: keeping the last good listener", "listener", w.name, "err", err)
		return
	}
	w.log.Warn("inbound: not serving", "listener", w.name, "err", err)
	w.set(&State{Mode: NotServing, Reason: err.Error()})
}

func (w *Watcher) onMissing() {
	w.log.Warn("inbound: istiod has no listener for this address: not serving", "listener", w.name)
	w.set(&State{Mode: NotServing, Reason: "istiod has no listener " + w.name +
		": it knows no Pod or WorkloadEntry at this address with a Service whose target port is this port"})
}

func (w *Watcher) close() { w.cancel() }

// authorize checks a call against the current state.
func (w *Watcher) authorize(ctx context.Context, p *triple.Peer, local netip.AddrPort, fullMethod string) error {
	s := w.state.Load()
	switch {
	case s.Mode == NotServing:
		return triple.Errorf(triple.CodeUnavailable, "inbound: not serving: %s", s.Reason)
	case s.Mode == MutualTLS && (p.TLS == nil || len(p.TLS.PeerCertificates) == 0):
		return triple.Errorf(triple.CodeUnauthenticated, "inbound: a plaintext connection is refused: PeerAuthentication STRICT requires mutual TLS (%s)", w.name)
	}
	if s.engine.Policies() == 0 && len(s.Listener.FilterChain.RBAC) == 0 {
		return nil
	}
	r := &authz.Request{Path: fullMethod, Destination: local, TLS: p.TLS}
	if ci, ok := triple.CallInfoFromContext(ctx); ok {
		r.Authority = ci.Authority
	}
	if md, ok := triple.FromIncomingContext(ctx); ok {
		r.Headers = md
	}
	if p.Addr != nil {
		r.Source, _ = addrPort(p.Addr)
	}
	if d := s.engine.Evaluate(r); !d.Allowed {
		return triple.Errorf(triple.CodePermissionDenied, "%s", d.Reason)
	}
	return nil
}

// tlsConfig is the server side of mutual TLS for one connection: the
// workload certificate, a client certificate required and verified against
// the mesh root, and the SAN matchers of the current listener.
func (w *Watcher) tlsConfig(remote string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: w.src.GetCertificate,
		ClientAuth:     tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			err := w.verifyClient(cs)
			if err != nil {
				w.log.Warn("inbound: refused a client certificate", "listener", w.name, "remote", remote, "err", err)
			}
			return err
		},
	}
}

func (w *Watcher) verifyClient(cs tls.ConnectionState) error {
	raw := make([][]byte, len(cs.PeerCertificates))
	for i, c := range cs.PeerCertificates {
		raw[i] = c.Raw
	}
	if _, err := w.src.VerifyPeer(raw); err != nil {
		return err
	}
	s := w.state.Load()
	if s.Listener == nil || s.Listener.FilterChain.TLS == nil || len(s.Listener.FilterChain.TLS.SubjectAltNames) == 0 {
		return nil
	}
	if matchSAN(cs.PeerCertificates[0], s.Listener.FilterChain.TLS.SubjectAltNames) {
		return nil
	}
	return errors.New("inbound: the client certificate matches none of the listener's subject alt names")
}

func matchSAN(c *x509.Certificate, ms []xdsresource.HeaderMatch) bool {
	var names []string
	for _, u := range c.URIs {
		names = append(names, u.String())
	}
	names = append(names, c.DNSNames...)
	names = append(names, c.EmailAddresses...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	for i := range ms {
		for _, n := range names {
			if authz.MatchString(&ms[i], n) {
				return true
			}
		}
	}
	return false
}
