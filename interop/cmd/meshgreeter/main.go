// Command meshgreeter is the Go provider the mesh end-to-end tests run in
// containers: greet.GreetService over Triple with Shoal's sdk, answering with
// its Pod name and version so a test can tell which workload served a call.
//
// Greet also reports the call's x- headers in GreetResponse.seen, so a test
// can check the headers the mesh set, added or removed.
//
// Test controls, all per request or per process:
//   - GreetRequest.sleep_ms and fail_code, as in the interop suite;
//   - the name "flaky" fails every third such call with UNAVAILABLE (a
//     provider that a retry policy must hide);
//   - an admin HTTP port ($ADMIN_PORT, default 8081): POST /broken?on=true
//     makes every call fail with UNAVAILABLE until /broken?on=false (an
//     endpoint for outlier detection to eject), and GET /calls counts the
//     calls it received.
//
// With ISTIO_METRICS_PORT set it records Istio's standard request metrics
// (observability/istiometrics, identity from the Pod environment) and serves
// them at /metrics of Shoal's admin endpoint on that port.
//
// Security and calls from shoal.yaml ($SHOAL_CONFIG or ./shoal.yaml): a
// registry of kind istio there may set params.identity (registry-istio's
// "Security from configuration"). For a call that arrived over mutual TLS,
// GreetResponse.seen["peer"] is the client's SPIFFE ID. With references in
// shoal.yaml (router mesh allowed) it is also a consumer: GET /call?ref=NAME&name=X
// on the admin port calls Greet through reference NAME and answers with
// the reply as JSON, or 502 and the error. SHOAL_PROVIDE=false makes it a
// consumer only: it serves and registers nothing.
//
// SHOAL_GROUP sets the service group. With SHOAL_REGISTRY=istio it registers through istiod (registry-istio):
// it publishes greet.GreetService's ServiceEntry through the Kubernetes API
// (KUBECONFIG) and withdraws it when it stops. It listens on $PORT (default
// 20000) and stops gracefully on SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/shoalmesh/shoal/observability/admin"
	"github.com/shoalmesh/shoal/observability/istiometrics"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	registryistio "github.com/shoalmesh/shoal/registry-istio"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/filter"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/router"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

type greeter struct {
	greettriple.UnimplementedGreetServiceHandler
	name   string
	broken atomic.Bool
	flaky  atomic.Int64
	calls  atomic.Int64
}

func (g *greeter) check(ctx context.Context, req *greet.GreetRequest) error {
	g.calls.Add(1)
	if g.broken.Load() {
		return triple.NewError(triple.CodeUnavailable, g.name+" is broken (admin switch)")
	}
	if req.GetName() == "flaky" && g.flaky.Add(1)%3 == 0 {
		return triple.NewError(triple.CodeUnavailable, g.name+" failed a flaky call")
	}
	if ms := req.GetSleepMs(); ms > 0 {
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return triple.NewError(triple.CodeDeadlineExceeded, "cancelled while sleeping")
		case <-t.C:
		}
	}
	if c := req.GetFailCode(); c != 0 {
		return triple.NewError(triple.Code(c), fmt.Sprintf("%s fails with code %d as asked", g.name, c))
	}
	return nil
}

func (g *greeter) Greet(ctx context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	if err := g.check(ctx, req); err != nil {
		return nil, err
	}
	seen := seenHeaders(ctx)
	if id := peerID(ctx); id != "" {
		if seen == nil {
			seen = map[string]string{}
		}
		seen["peer"] = id
	}
	return &greet.GreetResponse{Greeting: "Hello, " + req.GetName(), ServedBy: g.name, Seen: seen}, nil
}

// peerID is the SPIFFE ID (URI SAN) of the client's certificate for a call
// over mutual TLS, "" otherwise.
func peerID(ctx context.Context) string {
	p, ok := triple.PeerFromContext(ctx)
	if !ok || p.TLS == nil || len(p.TLS.PeerCertificates) == 0 || len(p.TLS.PeerCertificates[0].URIs) != 1 {
		return ""
	}
	return p.TLS.PeerCertificates[0].URIs[0].String()
}

// callHandler serves GET /call?ref=NAME&name=X: one Greet through the app's
// reference NAME, the reply as JSON.
func callHandler(a *app.App) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ref, err := a.Reference(r.URL.Query().Get("ref"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		resp, err := greettriple.NewGreetServiceClient(tri.NewClient(ref)).Greet(ctx, &greet.GreetRequest{Name: r.URL.Query().Get("name")})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, err := protojson.Marshal(resp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b) //nolint:gosec // protojson of the reply, served as application/json
	}
}

// seenHeaders reports the call's x- headers (attachments), lower-cased, so a
// test can see what the mesh added, set or removed on the way.
func seenHeaders(ctx context.Context) map[string]string {
	md, ok := triple.FromIncomingContext(ctx)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for k := range md {
		if k = strings.ToLower(k); strings.HasPrefix(k, "x-") {
			out[k] = md.Get(k)
		}
	}
	return out
}

func (g *greeter) GreetServerStream(req *greet.GreetRequest, s triple.ServerStreamServer[greet.GreetResponse]) error {
	if err := g.check(s.Context(), req); err != nil {
		return err
	}
	for i := range max(req.GetCount(), 1) {
		if err := s.Send(&greet.GreetResponse{Greeting: fmt.Sprintf("Hello, %s (%d)", req.GetName(), i+1), ServedBy: g.name}); err != nil {
			return err
		}
	}
	return nil
}

// GreetClientStream checks each request as Greet does (a request's
// sleepMs holds the stream) and answers once, after the client's last
// request, with every name it got.
func (g *greeter) GreetClientStream(s triple.ClientStreamServer[greet.GreetRequest, greet.GreetResponse]) error {
	var names []string
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return s.SendAndClose(&greet.GreetResponse{Greeting: "Hello, " + strings.Join(names, ", "), ServedBy: g.name})
		}
		if err != nil {
			return err
		}
		if err := g.check(s.Context(), req); err != nil {
			return err
		}
		names = append(names, req.GetName())
	}
}

func (g *greeter) GreetBidiStream(s triple.BidiStreamServer[greet.GreetRequest, greet.GreetResponse]) error {
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(&greet.GreetResponse{Greeting: "Hello, " + req.GetName(), ServedBy: g.name}); err != nil {
			return err
		}
	}
}

// istioMetrics returns the server filter recording Istio's metrics and
// serves them on the admin endpoint at port; stop stops the endpoint.
func istioMetrics(port string) (_ filter.Server, stop func(), _ error) {
	m, err := istiometrics.New()
	if err != nil {
		return filter.Server{}, nil, err
	}
	adm, err := admin.New(admin.WithAddress(":"+port), admin.WithGatherer(m.Registry()))
	if err != nil {
		return filter.Server{}, nil, err
	}
	if err := adm.Start(context.Background()); err != nil {
		return filter.Server{}, nil, err
	}
	adm.SetReady(true)
	return m.ServerFilter(0), func() { _ = adm.Stop(context.Background()) }, nil
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run() error {
	port, err := strconv.Atoi(env("PORT", "20000"))
	if err != nil {
		return fmt.Errorf("PORT: %w", err)
	}
	g := &greeter{name: env("POD_NAME", "meshgreeter") + "/" + env("VERSION", "v0")}
	provide := os.Getenv("SHOAL_PROVIDE") != "false"
	opts := []config.Option{
		config.WithApplicationName("meshgreeter"),
		config.WithProtocol(config.Protocol{Name: "tri", Port: port}),
	}
	if provide {
		opts = append(opts, config.WithService(config.Service{Interface: greettriple.GreetServiceName, Group: os.Getenv("SHOAL_GROUP")}))
	}
	// A registry of kind istio may come from shoal.yaml too.
	registry.Default.Register(registryistio.Builder())
	if os.Getenv("SHOAL_REGISTRY") == registryistio.Name {
		// Register through istiod: publish the interface's ServiceEntry
		// (KUBECONFIG) and wait until istiod serves this workload under it.
		opts = append(opts, config.WithRegistry(config.Registry{Name: "istio", Kind: registryistio.Name}))
	}
	cfg, err := config.Load(opts...)
	if err != nil {
		return err
	}
	servers := tri.NewServers([]tri.Export{{Desc: &greettriple.GreetService_ServiceDesc, Impl: g, Group: os.Getenv("SHOAL_GROUP")}})
	var appOpts []app.Option
	if provide {
		appOpts = append(appOpts, app.WithServers(servers.Factory()), app.WithServing(servers.SetServing))
	}
	if port := os.Getenv("ISTIO_METRICS_PORT"); port != "" {
		filter, stop, err := istioMetrics(port)
		if err != nil {
			return err
		}
		defer stop()
		appOpts = append(appOpts, app.WithServerFilters(filter))
	}
	if len(cfg.References) > 0 {
		appOpts = append(appOpts, app.WithTransport(tri.NewTransport()),
			app.WithEngines(router.NewEngines(router.ServiceBuilder(), routermesh.Builder())))
	}
	a, err := app.New(cfg, appOpts...)
	if err != nil {
		return err
	}
	admin := http.NewServeMux()
	if len(cfg.References) > 0 {
		admin.HandleFunc("GET /call", callHandler(a))
	}
	admin.HandleFunc("POST /broken", func(w http.ResponseWriter, r *http.Request) {
		on, err := strconv.ParseBool(r.URL.Query().Get("on"))
		if err != nil {
			http.Error(w, "on=true|false", http.StatusBadRequest)
			return
		}
		g.broken.Store(on)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprintln(w, "broken="+strconv.FormatBool(on)) //nolint:gosec // a formatted bool, served as text/plain
	})
	admin.HandleFunc("GET /calls", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, g.calls.Load())
	})
	srv := &http.Server{Addr: ":" + env("ADMIN_PORT", "8081"), Handler: admin, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	defer func() { _ = srv.Close() }()
	return a.Run(context.Background(), 5*time.Second)
}
