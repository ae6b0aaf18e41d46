package securitye2e_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/interop/internal/e2etest"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	"github.com/shoalmesh/shoal/registry-istio/identity"
	routermesh "github.com/shoalmesh/shoal/router-mesh"
)

const (
	ctrService = "sec-greeter"
	// ctrHost is the mesh host registry-istio maps greet.GreetService to
	// (mapping's defaults: namespace default, port 50051).
	ctrHost   = "greet.greetservice.default.shoal.local"
	ctrPort   = 20000
	ctrAdmin  = 8081
	shoalYAML = "/etc/shoal/shoal.yaml"
)

// ctrConfig is the shoal.yaml of a meshgreeter container: the istio
// registry with params.identity: istiod, everything else from the Pod's
// environment and mounted files; references, if any, follow.
func ctrConfig(references string) string {
	return `registries:
  - name: mesh
    kind: istio
    params:
      identity: istiod
      publish: "false"
` + references
}

// TestContainersSecurityFromConfig: a meshgreeter provider and a meshgreeter
// consumer run in containers published as Pods, each with its own
// ServiceAccount, the istio-ca TokenRequest token and the mesh root mounted
// where Istio's injector puts them, and security turned on only by
// shoal.yaml (identity: istiod, on istiod's TLS port). Under
// PeerAuthentication STRICT and DestinationRule ISTIO_MUTUAL, the
// consumer's calls succeed over mutual TLS, the provider sees the
// consumer's SPIFFE ID, and the provider's certificate names its own
// service account's SPIFFE ID.
func TestContainersSecurityFromConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver, istiod and containers; run without -short (make test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// Cleanups, not defers: the workloads' cleanups (registered later, run
	// first) need the API server and the engine.
	m, eng, image := e2etest.StartMesh(ctx, t, t.Cleanup, quiet)
	// The policies come first, so that every call is under them.
	if err := m.Apply(ctx, fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: default}
spec:
  selector: {app: %[1]s}
  ports: [{name: grpc-tri, port: %[2]d, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: %[1]s-interface, namespace: default}
spec:
  hosts: [%[3]s]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 50051, name: grpc-tri, protocol: GRPC, targetPort: %[2]d}]
  workloadSelector: {labels: {app: %[1]s}}
`, ctrService, ctrPort, ctrHost)+"---"+strictMesh+"---"+istioMutual(ctrService, ctrHost)); err != nil {
		t.Fatal(err)
	}

	run := func(spec localmesh.WorkloadSpec) *localmesh.Workload {
		t.Helper()
		spec.Image, spec.IstioIdentity = image, true
		spec.Env["PORT"] = strconv.Itoa(ctrPort)
		spec.Env["ADMIN_PORT"] = strconv.Itoa(ctrAdmin)
		spec.Env["SHOAL_CONFIG"] = shoalYAML
		w, err := m.RunWorkload(ctx, eng, spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s logs:\n%s", w.Name(), w.Logs(context.Background()))
			}
			if err := w.Stop(context.Background(), 5*time.Second); err != nil {
				t.Errorf("stop %s: %v", w.Name(), err)
			}
		})
		return w
	}
	provider := run(localmesh.WorkloadSpec{
		Name: "sec-provider-0", ServiceAccount: "sec-provider",
		Labels:    map[string]string{"app": ctrService},
		Env:       map[string]string{},
		Files:     map[string]string{shoalYAML: ctrConfig("")},
		ReadyPort: ctrPort,
	})
	consumer := run(localmesh.WorkloadSpec{
		Name: "sec-consumer-0", ServiceAccount: "sec-consumer",
		Labels: map[string]string{"app": "sec-consumer"},
		Env:    map[string]string{"SHOAL_PROVIDE": "false"},
		Files: map[string]string{shoalYAML: ctrConfig(fmt.Sprintf(`references:
  - name: greet
    interface: %s
    registry: mesh
    router: %s
    waitForReady: true
`, greettriple.GreetServiceName, routermesh.EngineName))},
		ReadyPort: ctrAdmin,
	})
	providerID := workload{sa: "sec-provider"}.id()
	consumerID := workload{sa: "sec-consumer"}.id()

	// The provider serves once istiod sent its inbound listener (STRICT):
	// wait for the first call through the consumer to succeed, then every
	// call must.
	call := func(name string) (*greet.GreetResponse, error) {
		cctx, ccancel := context.WithTimeout(ctx, 15*time.Second)
		defer ccancel()
		url := "http://" + consumer.Addr(ctrAdmin) + "/call?ref=greet&name=" + name
		req, err := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer func() { _ = res.Body.Close() }()
		body, err := io.ReadAll(io.LimitReader(res.Body, 1<<16))
		if err != nil {
			return nil, err
		}
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("consumer answered %s: %s", res.Status, body)
		}
		var out greet.GreetResponse
		return &out, protojson.Unmarshal(body, &out)
	}
	var lastErr error
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, lastErr = call("first"); lastErr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consumer's calls never succeeded within 90 s; last: %v", lastErr)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	for i := range 5 {
		resp, err := call(fmt.Sprintf("c%d", i))
		if err != nil {
			t.Fatalf("call %d after the first succeeded: %v", i, err)
		}
		if got, want := resp.GetServedBy(), provider.Name()+"/v0"; got != want {
			t.Errorf("served by %q, want %q", got, want)
		}
		if got := resp.GetSeen()["peer"]; got != consumerID.String() {
			t.Fatalf("the provider saw client %q over mutual TLS, want the consumer's service account %v", got, consumerID)
		}
	}

	// The provider's certificate, as a third workload with istiod's
	// certificate sees it.
	probe := newWorkload(ctx, t, m, "sec-probe")
	src, err := probe.source(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	cfg := src.ClientTLSConfig(identity.AllowIDs(providerID))
	cfg.NextProtos = []string{"h2"}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", provider.Addr(ctrPort))
	if err != nil {
		t.Fatalf("mutual TLS to the provider, expecting %v: %v", providerID, err)
	}
	defer func() { _ = conn.Close() }()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 || len(certs[0].URIs) != 1 || certs[0].URIs[0].String() != providerID.String() {
		var uris []string
		if len(certs) > 0 {
			for _, u := range certs[0].URIs {
				uris = append(uris, u.String())
			}
		}
		t.Fatalf("the provider's certificate names %v, want only %v", uris, providerID)
	}

	// A plaintext client is refused under STRICT.
	if _, err := grpcGo(t, provider.Addr(ctrPort), nil).Greet(callCtx(t), &greet.GreetRequest{Name: "plain"}); err == nil {
		t.Fatal("a plaintext grpc-go call to the provider under STRICT succeeded; want it refused")
	}
}
