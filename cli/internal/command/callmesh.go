package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

// isMeshTarget reports whether a call target names a service of the mesh
// (xds:///host:port, or an interface name: dotted, no port, no scheme)
// rather than an address.
func isMeshTarget(target string) bool {
	return strings.HasPrefix(target, "xds:") || (strings.Contains(target, ".") && !strings.ContainsAny(target, ":/"))
}

// meshConfig is the bootstrap of an xDS stream the CLI opens as node
// (unless POD_NAME names another): istiod at xds, else SHOAL_XDS_ADDRESS,
// else the control plane of 'shoal dev up' when one runs, else a gRPC xDS
// bootstrap file.
func meshConfig(xds, node string) (*bootstrap.Config, error) {
	if xds == "" && os.Getenv(bootstrap.EnvAddress) == "" &&
		os.Getenv(bootstrap.EnvGRPCFile) == "" && os.Getenv(bootstrap.EnvGRPCConfig) == "" {
		if dir, err := devDir(); err == nil {
			if st, err := readDevState(devPaths{dir}); err == nil && running(st.PID) {
				xds = st.XDSAddress
			}
		}
	}
	if xds == "" && os.Getenv(bootstrap.EnvAddress) == "" {
		return bootstrap.Load()
	}
	environ := os.Environ()
	if xds != "" {
		environ = append(environ, bootstrap.EnvAddress+"="+xds)
	}
	if os.Getenv("POD_NAME") == "" {
		environ = append(environ, "POD_NAME="+node)
	}
	return bootstrap.FromEnv(environ)
}

// unavailablef is an error that ends the command with UNAVAILABLE (14), as
// a consumer's call would end.
func unavailablef(format string, args ...any) error {
	return &exitError{code: int(triple.CodeUnavailable), err: fmt.Errorf(format, args...)}
}

// meshRoute is a routed client of a mesh target.
type meshRoute struct {
	client *tri.Client
	// endpoint records the endpoint each attempt goes to.
	endpoint *answeredBy
	// addrs are the ready endpoints of the first snapshot.
	addrs []string
	close func()
}

// openMesh watches a mesh target as a Shoal consumer does: registry-istio
// watches it, router-mesh's engine follows the routes istiod sends, and
// sdk/tri's transport makes the calls. It fails with UNAVAILABLE when
// istiod cannot be reached or has no service for the target.
func openMesh(ctx context.Context, f *callFlags, wire triple.Protocol, target string) (*meshRoute, error) {
	cfg, err := meshConfig(f.xds, "shoal-call")
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	quiet := slog.New(slog.DiscardHandler)
	reg, err := registryistio.New(cfg, registryistio.WithLogger(quiet),
		registryistio.WithClientOptions(xdsclient.WithBackoff(100*time.Millisecond, time.Second)))
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = reg.Close()
		}
	}()
	key := registry.Key{Interface: target, Group: f.group, Version: f.version}
	host, err := reg.Target(key)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	w, err := reg.Watch(ctx, key)
	if err != nil {
		return nil, err
	}
	snap, err := firstSnapshot(ctx, w, reg.Client(), waitBound(ctx))
	_ = w.Close()
	if err != nil {
		return nil, unavailablef("%v", err)
	}
	if len(snap.Routes()) == 0 && len(snap.Services()) == 0 {
		return nil, unavailablef("istiod at %s has no service for %s (host %s): apply the ServiceEntry that carries it, or check the name and --group", cfg.ServerURI, target, host)
	}
	ep := &answeredBy{}
	ref, err := consumer.New(key, reg, &recordingTransport{next: tri.NewTransport(triple.WithProtocol(wire)), rec: ep},
		consumer.WithEngine(routermesh.New(routermesh.WithLogger(quiet))),
		consumer.WithLogger(quiet), consumer.WithTimeout(0))
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	ok = true
	return &meshRoute{
		client: tri.NewClient(ref), endpoint: ep, addrs: readyAddresses(snap),
		close: func() { _ = ref.Close(); _ = reg.Close() },
	}, nil
}

// runMeshCall calls a method of a mesh target through openMesh's client.
func runMeshCall(ctx context.Context, e *env, f *callFlags, wire triple.Protocol, target, method string) error {
	if f.protocol == "http" {
		return usageErrorf("--protocol http calls an address: give host:port instead of %s", target)
	}
	svcName, methodName, md, err := f.parseCall(target, method)
	if err != nil {
		return err
	}
	ctx, cancel := f.context(ctx)
	defer cancel()
	r, err := openMesh(ctx, f, wire, target)
	if err != nil {
		return err
	}
	defer r.close()
	var src descSource
	if len(f.protos) > 0 {
		if src, err = newProtoFileSource(ctx, f.protos, f.importPaths); err != nil {
			return err
		}
	} else {
		if len(r.addrs) == 0 {
			return unavailablef("istiod knows no ready endpoint of %s to ask for the schema; pass --proto", target)
		}
		rs := &endpointsSource{addrs: r.addrs, opts: []triple.ClientOption{triple.WithProtocol(wire)}}
		defer rs.close()
		src = rs
	}
	sd, err := findService(ctx, src, svcName)
	if err != nil {
		return err
	}
	// Group and version travel with the reference's key.
	ff := *f
	ff.group, ff.version = "", ""
	return callMethod(ctx, e, &ff, r.client, src, sd, methodName, target, md, r.endpoint)
}

// parseCall reads the service and method a call names, and its -H
// headers.
func (f *callFlags) parseCall(target, method string) (svc, name string, md triple.Metadata, err error) {
	if svc, name, err = targetMethod(target, method); err != nil {
		return "", "", nil, err
	}
	md, err = f.metadata()
	return svc, name, md, err
}

// targetMethod splits the method argument; for an interface-name target a
// bare method name calls that interface.
func targetMethod(target, method string) (svc, name string, err error) {
	if isMeshTarget(target) && !strings.HasPrefix(target, "xds:") && !strings.ContainsAny(method, "/.") && method != "" {
		return target, method, nil
	}
	return splitMethod(method)
}

// waitBound is how long to wait for istiod's first answer: what is left of
// ctx's deadline, else a minute.
func waitBound(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return time.Minute
}

// readyAddresses lists the distinct addresses of the ready endpoints of a
// snapshot, in the order its services and subsets list them.
func readyAddresses(snap *mesh.Snapshot) []string {
	var out []string
	add := func(eps []mesh.Endpoint) {
		for i := range eps {
			if eps[i].Ready() && !slices.Contains(out, eps[i].Address) {
				out = append(out, eps[i].Address)
			}
		}
	}
	for _, s := range snap.Services() {
		add(s.Endpoints)
		for _, sub := range s.Subsets {
			add(sub.Endpoints)
		}
	}
	return out
}

// endpointsSource asks the endpoints of a mesh service for the schema by
// reflection, one after the other, until one answers: a service's
// endpoints may run builds with and without reflection.
type endpointsSource struct {
	addrs []string
	opts  []triple.ClientOption

	cur   *reflectionSource
	cc    *triple.ClientConn
	tried int
}

func (s *endpointsSource) close() {
	if s.cur != nil {
		s.cur.close()
		_ = s.cc.Close()
		s.cur, s.cc = nil, nil
	}
}

// each runs fn on the current endpoint's reflection, moving on to the next
// endpoint while fn fails for want of an answering reflection service.
func (s *endpointsSource) each(fn func(*reflectionSource) error) error {
	var errs []error
	for {
		if s.cur == nil {
			if s.tried == len(s.addrs) {
				if len(errs) == 0 {
					return unavailablef("no endpoint left to ask for the schema; pass --proto")
				}
				return errors.Join(errs...)
			}
			cc, err := triple.Dial(s.addrs[s.tried], s.opts...)
			s.tried++
			if err != nil {
				errs = append(errs, err)
				continue
			}
			s.cc, s.cur = cc, newReflectionSource(cc)
		}
		err := fn(s.cur)
		switch triple.CodeOf(err) {
		case triple.CodeUnimplemented, triple.CodeUnavailable:
			errs = append(errs, fmt.Errorf("%s: %w", s.addrs[s.tried-1], err))
			s.close()
			if s.tried == len(s.addrs) {
				return errs[len(errs)-1]
			}
		default:
			return err
		}
	}
}

func (s *endpointsSource) services(ctx context.Context) (out []string, err error) {
	err = s.each(func(r *reflectionSource) error {
		out, err = r.services(ctx)
		return err
	})
	return out, err
}

func (s *endpointsSource) find(ctx context.Context, name string) (d protoreflect.Descriptor, err error) {
	err = s.each(func(r *reflectionSource) error {
		d, err = r.find(ctx, name)
		return err
	})
	return d, err
}

func (s *endpointsSource) files() *protoregistry.Files {
	if s.cur == nil {
		return new(protoregistry.Files)
	}
	return s.cur.files()
}

// answeredBy records the endpoint of the last attempt of a routed call:
// with retries, the one whose answer the call returned.
type answeredBy struct {
	mu sync.Mutex
	ep *mesh.Endpoint
}

func (a *answeredBy) set(ep *mesh.Endpoint) {
	a.mu.Lock()
	a.ep = ep
	a.mu.Unlock()
}

// get is the endpoint of the last attempt, nil before any.
func (a *answeredBy) get() *mesh.Endpoint {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ep
}

// String is the endpoint's address, "" before any attempt.
func (a *answeredBy) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ep == nil {
		return ""
	}
	return a.ep.Address
}

// recordingTransport dials through next and records which endpoint each
// call attempt goes to.
type recordingTransport struct {
	next consumer.Transport
	rec  *answeredBy
}

func (t *recordingTransport) Dial(ctx context.Context, ep *mesh.Endpoint) (consumer.Conn, error) {
	c, err := t.next.Dial(ctx, ep)
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, ep: ep, rec: t.rec}, nil
}

type recordingConn struct {
	consumer.Conn
	ep  *mesh.Endpoint
	rec *answeredBy
}

func (c *recordingConn) Invoke(ctx context.Context, info *call.Info, req, resp any) error {
	c.rec.set(c.ep)
	return c.Conn.Invoke(ctx, info, req, resp)
}

func (c *recordingConn) NewStream(ctx context.Context, info *call.Info) (filter.ClientStream, error) {
	c.rec.set(c.ep)
	return c.Conn.NewStream(ctx, info)
}

// EnforcesDeadline passes on the wrapped connection's answer
// (consumer.DeadlineConn).
func (c *recordingConn) EnforcesDeadline() bool {
	d, ok := c.Conn.(consumer.DeadlineConn)
	return ok && d.EnforcesDeadline()
}

var _ consumer.DeadlineConn = (*recordingConn)(nil)
