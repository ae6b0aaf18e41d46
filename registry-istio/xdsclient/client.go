package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
)

// Client is an ADS client to istiod. Create it with New and stop it with
// Close. Its methods are safe for concurrent use.
type Client struct {
	cfg       *bootstrap.Config
	conf      config
	node      *corev3.Node
	logger    *slog.Logger
	cc        *grpc.ClientConn
	callbacks *serializer
	cancel    context.CancelFunc
	done      chan struct{}

	runCtx context.Context //nolint:containedctx // the stream's lifetime, started lazily

	mu      sync.Mutex
	closed  bool
	started bool
	// announce makes every stream introduce the node even with nothing
	// watched (see Connect).
	announce bool
	types    [len(xdsresource.Types)]*typeState
	// kick wakes the current stream's sender; buffered, one pending wake.
	kick chan struct{}
	conn connState
}

type typeState struct {
	typ       xdsresource.Type
	resources map[string]*resourceState
	// byRaw finds a cached resource by its encoding, so that resources a
	// response repeats unchanged (most of them, in state of the world) are
	// neither decoded nor validated again.
	byRaw map[string]*resourceState
	// version is the last accepted (ACKed) version_info.
	version string
	// nonce is the last response nonce on the current stream.
	nonce string
	// nack is the error detail to send with the next request.
	nack string
	// dirty means the server must be told the current state of this type.
	dirty bool
	// requested means a request for this type went out on this stream.
	requested bool
	// sentNames is the subscription last sent on this stream.
	sentNames     []string
	lastError     string
	lastErrorAt   time.Time
	lastNACKed    string
	lastUpdateAt  time.Time
	responseCount int
	// validUpdates and invalidUpdates count the resources received, valid
	// (unchanged ones included) and invalid (gRFC A78's
	// resource_updates_valid and resource_updates_invalid).
	validUpdates, invalidUpdates int
}

type resourceState struct {
	name     string
	watchers map[*watcher]struct{}
	resource xdsresource.Resource
	// raw is the encoding of resource as received; ts.byRaw indexes it.
	raw     string
	version string
	state   ResourceState
	err     string
	updated time.Time
	// timer reports the resource as not existing if no response names it
	// in time; it runs only while a request for it is out on a stream.
	timer *time.Timer
	// timerGen tells a stale timer's callback from the current one's.
	timerGen uint64
	// absent: a response lacked this never-received listener or cluster
	// (see missing).
	absent bool
}

// stopTimer cancels the does-not-exist timer. Call with c.mu held.
func (rs *resourceState) stopTimer() {
	if rs.timer != nil {
		rs.timer.Stop()
		rs.timer = nil
	}
}

// stopTimers cancels every does-not-exist timer. Call with c.mu held.
func (c *Client) stopTimers() {
	for _, ts := range c.types {
		for _, rs := range ts.resources {
			rs.stopTimer()
		}
	}
}

// startTimers arms the does-not-exist timer of every resource of ts that
// was just requested and never answered. Call with c.mu held.
func (c *Client) startTimers(ts *typeState) {
	for _, rs := range ts.resources {
		if rs.state != StateRequested || rs.timer != nil {
			continue
		}
		rs.absent = false
		c.armTimer(ts, rs, c.conf.notFound)
	}
}

// absentGrace is how long a listener or cluster that was asked for and
// never received may stay missing from istiod's responses before it is
// reported as not existing. A push that crossed the request lacks it, and
// istiod answers the ACK that follows (its names changed) at once.
const absentGrace = time.Second

// missing notes that a response lacked rs, a listener or cluster never
// received: unless a response brings it within absentGrace (or the
// resource timeout, if shorter), it does not exist. Call with c.mu held.
func (c *Client) missing(ts *typeState, rs *resourceState) {
	if rs.absent || rs.state != StateRequested {
		return
	}
	rs.absent = true
	rs.stopTimer()
	c.armTimer(ts, rs, min(absentGrace, c.conf.notFound))
}

// armTimer starts rs's does-not-exist timer. Call with c.mu held.
func (c *Client) armTimer(ts *typeState, rs *resourceState, d time.Duration) {
	rs.timerGen++
	gen := rs.timerGen
	rs.timer = time.AfterFunc(d, func() { c.resourceTimedOut(ts, rs, gen) })
}

func (c *Client) resourceTimedOut(ts *typeState, rs *resourceState, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || ts.resources[rs.name] != rs || rs.state != StateRequested || rs.timer == nil || rs.timerGen != gen {
		return
	}
	rs.timer = nil
	rs.state, rs.updated = StateNotFound, time.Now()
	c.logger.Warn("istiod did not answer for a resource; reporting it as not existing", "type", ts.typ.String(), "name", rs.name, "after", c.conf.notFound)
	for w := range rs.watchers {
		c.callbacks.schedule(w.notFound)
	}
}

type connState struct {
	state     ConnState
	lastError string
	since     time.Time
	streams   int
	// nextRetry is when the next stream is due while not Ready.
	nextRetry time.Time
	// refusedProbes counts the connection probes istiod's address refused
	// since the stream last opened.
	refusedProbes int
	// serverFailures counts istiod going from healthy to unhealthy (gRFC
	// A78's server_failure): a stream that ended without a response while
	// serverFailing was false. A response clears serverFailing.
	serverFailures int
	serverFailing  bool
}

// New returns a client for the istiod cfg names. Nothing is sent, and no
// connection is made, until the first watch; then the client connects in the
// background and keeps its ADS stream until Close.
func New(cfg *bootstrap.Config, opts ...Option) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("registry-istio: nil bootstrap; use bootstrap.Load or bootstrap.FromEnv")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conf, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	node, err := cfg.NodeProto()
	if err != nil {
		return nil, err
	}
	dialOpts, err := transportOptions(cfg)
	if err != nil {
		return nil, err
	}
	// Keep gRPC's own reconnect delays in step with the stream backoff, so a
	// restarted istiod is found as soon as the stream retries.
	dialOpts = append(dialOpts, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff: backoff.Config{
			BaseDelay:  conf.backoff.Base,
			Multiplier: 2,
			Jitter:     0.2,
			MaxDelay:   conf.backoff.Max,
		},
		MinConnectTimeout: 5 * time.Second,
	}))
	dialOpts = append(dialOpts, conf.dialOpts...)
	cc, err := grpc.NewClient(cfg.ServerURI, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("registry-istio: cannot use istiod address %q: %w; set %s", cfg.ServerURI, err, bootstrap.EnvAddress)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:       cfg,
		conf:      conf,
		node:      node,
		logger:    conf.logger.With("component", "registry-istio/xdsclient", "istiod", cfg.ServerURI),
		cc:        cc,
		callbacks: newSerializer(),
		cancel:    cancel,
		done:      make(chan struct{}),
		kick:      make(chan struct{}, 1),
		conn:      connState{state: Idle, since: time.Now()},
	}
	for _, t := range xdsresource.Types {
		c.types[t] = &typeState{typ: t, resources: map[string]*resourceState{}, byRaw: map[string]*resourceState{}}
	}
	c.runCtx = ctx
	return c, nil
}

// start opens the ADS stream on the first watch. Call with c.mu held.
func (c *Client) start() {
	if c.started || c.closed {
		return
	}
	c.started = true
	c.conn.state, c.conn.since = Connecting, time.Now()
	go c.run(c.runCtx)
}

// Node returns the node this client introduces itself as (a copy).
func (c *Client) Node() bootstrap.Node {
	n := c.cfg.Node
	n.Metadata = maps.Clone(n.Metadata)
	return n
}

// Connect opens the ADS stream now instead of at the first watch, and makes
// every stream introduce this node to istiod even while nothing is watched.
// A provider calls it at start: istiod learns the workload at once, which is
// what WorkloadEntry auto-registration needs (node metadata
// AUTO_REGISTER_GROUP, see bootstrap.Identity); Close ends the stream, and
// istiod removes the auto-registered entry after its grace period.
func (c *Client) Connect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.announce = true
	c.start()
}

// helloRequest introduces the node on a new stream when nothing is watched:
// an EDS request naming nothing, which istiod takes as a connection (it
// records the node and runs auto-registration) and answers with nothing.
func (c *Client) helloRequest() *discoveryv3.DiscoveryRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.announce {
		return nil
	}
	for _, ts := range c.types {
		if ts.watched() {
			return nil // the first real request carries the node
		}
	}
	return &discoveryv3.DiscoveryRequest{Node: c.node, TypeUrl: xdsresource.EndpointsURL}
}

// Close stops the stream and the callbacks. Watchers get no calls after
// Close returns.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	started := c.started
	c.stopTimers()
	c.mu.Unlock()
	c.cancel()
	if started {
		<-c.done
	}
	c.callbacks.close()
	return c.cc.Close()
}

// markDirty records that type t must be (re)requested. Call with c.mu held.
func (c *Client) markDirty(t xdsresource.Type) {
	c.types[t].dirty = true
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run keeps one ADS stream open until ctx ends, reconnecting with backoff.
func (c *Client) run(ctx context.Context) {
	defer close(c.done)
	var attempt uint32
	// down: a connection probe found istiod's address refusing connections
	// and none has found it accepting since.
	down := false
	for {
		gotResponse, err := c.runStream(ctx)
		if ctx.Err() != nil {
			return
		}
		if gotResponse {
			attempt, down = 0, false
		}
		c.disconnected(err, gotResponse)
		delay := c.conf.backoff.Delay(attempt, rand.Uint64N)
		attempt++
		c.logger.Warn("ADS stream to istiod failed; serving from cache and retrying", "error", err, "retry_in", delay)
		var back bool
		if back, down = c.waitToRetry(ctx, delay, down); back {
			attempt = 0
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// waitToRetry waits delay before the next stream, or less when istiod comes
// back: while the retry is further away than probeAfter, it dials istiod's
// address every probeEvery, and returns early, reporting back, when the
// address accepts connections after having refused them. A dial that
// succeeds while the address was not seen down ends the probing, so a live
// istiod whose streams fail is not dialled again and again. down is whether
// the address was last seen refusing, before and after the wait.
func (c *Client) waitToRetry(ctx context.Context, delay time.Duration, down bool) (back, stillDown bool) {
	network, addr := probeAddress(c.cfg.ServerURI)
	due := time.Now().Add(delay)
	c.mu.Lock()
	c.conn.nextRetry = due
	c.mu.Unlock()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	var tick <-chan time.Time
	if c.conf.probeEvery > 0 && delay > c.conf.probeAfter && network != "" {
		ticker := time.NewTicker(c.conf.probeEvery)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case <-ctx.Done():
			return false, down
		case <-timer.C:
			return false, down
		case <-tick:
		}
		d := net.Dialer{Timeout: c.conf.probeEvery}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			down = true
			c.mu.Lock()
			c.conn.refusedProbes++
			c.mu.Unlock()
			continue
		}
		_ = conn.Close()
		if !down {
			tick = nil // up, and the stream failed anyway: wait the full delay
			continue
		}
		c.logger.Info("istiod accepts connections again; reconnecting now", "retry_was_in", time.Until(due).Round(time.Millisecond))
		// gRPC's own reconnect backoff would hold the channel back.
		c.cc.ResetConnectBackoff()
		return true, false
	}
}

// probeAddress is where a connection probe dials: host:port, or a unix
// socket; empty when the address is neither.
func probeAddress(uri string) (network, addr string) {
	if path, ok := strings.CutPrefix(uri, "unix:"); ok {
		if p, ok := strings.CutPrefix(path, "//"); ok {
			path = p
		}
		return "unix", path
	}
	for _, scheme := range []string{"dns:", "passthrough:"} {
		if rest, ok := strings.CutPrefix(uri, scheme); ok {
			// dns:///host:port, dns://resolver/host:port
			uri = rest[strings.LastIndex(rest, "/")+1:]
		}
	}
	if _, port, err := net.SplitHostPort(uri); err != nil || port == "" || strings.Contains(uri, "/") {
		return "", ""
	}
	return "tcp", uri
}

// connError turns a stream error into a message that says what to do.
func (c *Client) connError(err error) error {
	if s, ok := grpcstatus.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable:
			return fmt.Errorf("registry-istio: no istiod at %s: %s; check istiod or set %s", c.cfg.ServerURI, s.Message(), bootstrap.EnvAddress)
		case codes.Unauthenticated, codes.PermissionDenied:
			return fmt.Errorf("registry-istio: istiod at %s refused this client: %s; check the token (%s) and TLS settings", c.cfg.ServerURI, s.Message(), bootstrap.EnvToken)
		}
	}
	return fmt.Errorf("registry-istio: ADS stream to %s: %w", c.cfg.ServerURI, err)
}

func (c *Client) disconnected(err error, gotResponse bool) {
	err = c.connError(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case gotResponse:
		c.conn.serverFailing = false
	case !c.conn.serverFailing:
		c.conn.serverFailing = true
		c.conn.serverFailures++
	}
	alreadyFailing := c.conn.state == TransientFailure
	c.conn.lastError = err.Error()
	c.stopTimers()
	if alreadyFailing {
		return // watchers were told when the outage began
	}
	c.conn.state = TransientFailure
	c.conn.since = time.Now()
	for _, ts := range c.types {
		for _, rs := range ts.resources {
			for w := range rs.watchers {
				c.callbacks.schedule(func() { w.err(err) })
			}
		}
	}
}

// runStream runs one ADS stream until it breaks. It reports whether any
// response arrived.
func (c *Client) runStream(ctx context.Context) (bool, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(c.cc).StreamAggregatedResources(sctx)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.conn.state = Ready
	c.conn.since = time.Now()
	c.conn.lastError = ""
	c.conn.streams++
	c.conn.nextRetry, c.conn.refusedProbes = time.Time{}, 0
	for _, ts := range c.types {
		// Resume: every subscription again, with the last accepted version.
		ts.nonce, ts.nack, ts.requested, ts.sentNames = "", "", false, nil
		if len(ts.resources) > 0 {
			c.markDirty(ts.typ)
		}
	}
	c.mu.Unlock()
	c.logger.Info("ADS stream to istiod open")

	sendErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendErr <- c.sendLoop(sctx, stream)
	}()
	gotResponse := false
	for {
		resp, err := stream.Recv()
		if err != nil {
			cancel()
			wg.Wait()
			select {
			case serr := <-sendErr:
				if serr != nil && !errors.Is(serr, context.Canceled) {
					err = errors.Join(err, serr)
				}
			default:
			}
			return gotResponse, err
		}
		gotResponse = true
		c.handleResponse(resp)
	}
}

// sendLoop sends a request for every dirty type whenever kicked.
func (c *Client) sendLoop(ctx context.Context, stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient) error {
	nodeSent := false
	if hello := c.helloRequest(); hello != nil {
		if err := stream.Send(hello); err != nil {
			return err
		}
		nodeSent = true
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.kick:
		}
		for _, req := range c.pendingRequests() {
			if !nodeSent {
				req.Node = c.node
				nodeSent = true
			}
			if err := stream.Send(req); err != nil {
				return err
			}
		}
	}
}

// pendingRequests builds the requests for the dirty types.
func (c *Client) pendingRequests() []*discoveryv3.DiscoveryRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*discoveryv3.DiscoveryRequest
	for _, ts := range c.types {
		if !ts.dirty {
			continue
		}
		ts.dirty = false
		names := make([]string, 0, len(ts.resources))
		for n, rs := range ts.resources {
			if len(rs.watchers) > 0 {
				names = append(names, n)
			}
		}
		if len(names) == 0 && ts.requested && (ts.typ == xdsresource.ListenerType || ts.typ == xdsresource.ClusterType) {
			// An empty LDS/CDS list means "everything" to istiod
			// (wildcard), so the last names stay subscribed on the
			// server, and cached here: istiod keeps them up to date, and
			// will not answer when they are watched again.
			names = ts.sentNames
		}
		ts.dropUnsubscribed(names)
		if len(names) == 0 && !ts.requested {
			continue // never subscribed on this stream: nothing to say
		}
		slices.Sort(names)
		ts.sentNames = names
		req := &discoveryv3.DiscoveryRequest{
			TypeUrl:       ts.typ.URL(),
			VersionInfo:   ts.version,
			ResponseNonce: ts.nonce,
			ResourceNames: names,
		}
		if ts.nack != "" {
			req.ErrorDetail = &status.Status{Code: int32(codes.InvalidArgument), Message: ts.nack}
			ts.nack = ""
		}
		ts.requested = true
		c.startTimers(ts)
		out = append(out, req)
	}
	return out
}

// watched reports whether any resource of ts has a watcher. Call with c.mu
// held.
func (ts *typeState) watched() bool {
	for _, rs := range ts.resources {
		if len(rs.watchers) > 0 {
			return true
		}
	}
	return false
}

// dropUnsubscribed forgets the unwatched resources that names (the
// subscription about to be sent) leaves out: from then on istiod no longer
// sends them. Call with c.mu held.
func (ts *typeState) dropUnsubscribed(names []string) {
	for n, rs := range ts.resources {
		if len(rs.watchers) > 0 || slices.Contains(names, n) {
			continue
		}
		rs.stopTimer()
		ts.setRaw(rs, "")
		delete(ts.resources, n)
	}
}

// setRaw records the encoding of the resource rs now holds.
func (ts *typeState) setRaw(rs *resourceState, raw string) {
	if rs.raw != "" {
		delete(ts.byRaw, rs.raw)
	}
	rs.raw = raw
	if raw != "" {
		ts.byRaw[raw] = rs
	}
}

// handleResponse validates a response, updates the cache and the watchers,
// and queues the ACK or NACK.
func (c *Client) handleResponse(resp *discoveryv3.DiscoveryResponse) {
	t, ok := xdsresource.TypeFromURL(resp.GetTypeUrl())
	if !ok {
		c.logger.Warn("istiod sent a type Shoal never asked for; ignored", "type_url", resp.GetTypeUrl())
		return
	}
	type parsed struct {
		res       xdsresource.Resource
		raw       []byte
		err       error
		unchanged bool
	}
	ts := c.types[t]
	c.mu.Lock()
	if !ts.requested {
		// An answer to the hello (see helloRequest), not to a subscription:
		// a server that takes the hello's empty list as a wildcard sends
		// every resource of the type. Its version says nothing about what
		// this client holds, so adopting it would make the subscription
		// that follows look like an ACK of resources never kept, and the
		// server would not send them again. Keep only the nonce.
		ts.nonce = resp.GetNonce()
		ts.responseCount++
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	results := make(map[string]parsed, len(resp.GetResources()))
	// First pass, under the lock: which resources are the cached ones?
	fresh := make([]*anypb.Any, 0, len(resp.GetResources()))
	c.mu.Lock()
	for _, a := range resp.GetResources() {
		if rs, ok := ts.byRaw[string(a.GetValue())]; ok {
			results[rs.name] = parsed{unchanged: true}
			continue
		}
		fresh = append(fresh, a)
	}
	c.mu.Unlock()
	// Second pass, unlocked: decode and validate the new ones.
	var errs []string
	unnamedErr := false
	for _, a := range fresh {
		name, r, err := xdsresource.Unmarshal(t, a)
		if err != nil {
			errs = append(errs, err.Error())
			if name == "" {
				unnamedErr = true
				continue
			}
		}
		results[name] = parsed{res: r, raw: a.GetValue(), err: err}
	}
	now := time.Now()

	c.mu.Lock()
	defer c.mu.Unlock()
	ts.nonce = resp.GetNonce()
	ts.responseCount++
	ts.lastUpdateAt = now
	ts.invalidUpdates += len(errs)
	ts.validUpdates += max(len(resp.GetResources())-len(errs), 0)
	for name, rs := range ts.resources {
		p, present := results[name]
		if present {
			rs.stopTimer()
		}
		switch {
		case present && p.unchanged:
			if rs.resource == nil {
				continue // unwatched and watched again meanwhile: wait for the next one
			}
			rs.err, rs.state, rs.version = "", StateACKed, resp.GetVersionInfo()
		case present && p.err != nil:
			rs.state = StateNACKed
			rs.err = p.err.Error()
			err := p.err
			for w := range rs.watchers {
				c.callbacks.schedule(func() { w.err(err) })
			}
		case present:
			rs.err = ""
			rs.state = StateACKed
			rs.version = resp.GetVersionInfo()
			ts.setRaw(rs, string(p.raw))
			rs.resource, rs.updated = p.res, now
			r := p.res
			for w := range rs.watchers {
				c.callbacks.schedule(func() { w.changed(r) })
			}
		case !unnamedErr && (t == xdsresource.ListenerType || t == xdsresource.ClusterType):
			// State of the world: a listener or cluster missing from the
			// response no longer exists. (Routes and endpoints are only
			// ever removed by their parent.) This holds only for one this
			// client has received: a name it has just asked for may be
			// missing because the response was built before istiod saw the
			// request (a push crossing it), so it is reported missing only
			// if no response brings it within absentGrace.
			if rs.resource == nil {
				c.missing(ts, rs)
				continue
			}
			rs.stopTimer()
			ts.setRaw(rs, "")
			rs.state, rs.resource, rs.err, rs.updated = StateNotFound, nil, "", now
			for w := range rs.watchers {
				c.callbacks.schedule(w.notFound)
			}
		}
	}
	if len(errs) > 0 {
		ts.nack = fmt.Sprintf("version %s rejected: %s", resp.GetVersionInfo(), strings.Join(errs, "; "))
		ts.lastError, ts.lastErrorAt, ts.lastNACKed = ts.nack, now, resp.GetVersionInfo()
		c.logger.Warn("NACK: istiod sent invalid resources; keeping the last good ones", "type", t.String(), "version", resp.GetVersionInfo(), "error", ts.nack)
	} else {
		ts.version = resp.GetVersionInfo()
	}
	c.markDirty(t)
}
