package localmesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Container labels the harness puts on everything it creates, so a later
// run can find what a crashed one left behind.
const (
	labelOwner = "io.shoalmesh.localmesh.owner" // PID of the process that created it
	labelPod   = "io.shoalmesh.localmesh.pod"   // namespace/name of its Pod object
	// labelComponent names the control-plane part a container runs.
	labelComponent = "io.shoalmesh.localmesh.component"
)

// DefaultNetwork is the container network workloads join. The harness
// assigns each workload its address in it before the container starts, the
// way a CNI plugin does for a Pod, so that the workload can be told its own
// IP (INSTANCE_IP) like the Kubernetes downward API would.
const DefaultNetwork = "shoal-localmesh"

// defaultSubnet is used when DefaultNetwork does not exist yet; override it
// with SHOAL_CONTAINER_SUBNET if it collides with a network of the machine.
const defaultSubnet = "10.213.0.0/16"

// Engine is a container engine reached through the Docker API (Docker, or
// podman's Docker-compatible service, as scripts/podman.sh sets up) via
// testcontainers-go. It builds images locally and runs workload containers
// on a bridge network the host can reach. Close it when done.
type Engine struct {
	prov   *testcontainers.DockerProvider
	api    client.APIClient
	logger *slog.Logger
	images imageConfig
	// publicJava is what PublicImages builds Java images on
	// (publicJavaBase; tests here, without a registry, give a stand-in).
	publicJava javaBase
	network    string
	subnet     netip.Prefix
	gateway    netip.Addr

	mu   sync.Mutex
	next uint32 // offset of the next address to try in subnet
}

// podmanSocket is where scripts/podman.sh serves podman's Docker API.
const podmanSocket = "/run/podman/podman.sock"

// setupEnv points testcontainers-go at podman's socket when no Docker
// engine is configured, and turns off Ryuk (its image cannot be pulled on a
// machine without a registry; the harness cleans up by label instead).
func setupEnv() {
	if os.Getenv("DOCKER_HOST") == "" {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			if _, err := os.Stat(podmanSocket); err == nil {
				_ = os.Setenv("DOCKER_HOST", "unix://"+podmanSocket)
			}
		}
	}
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}

// EngineOption configures NewEngine.
type EngineOption interface{ applyToEngine(*engineConfig) }

type engineConfig struct {
	images imageConfig
}

// NewEngine connects to the container engine, removes containers left by
// crashed runs, and makes sure the workload network exists. Its image
// source (WithImageSource, else SHOAL_IMAGES) decides what BuildJavaImage
// builds on.
func NewEngine(ctx context.Context, logger *slog.Logger, opts ...EngineOption) (*Engine, error) {
	if logger == nil {
		logger = slog.Default()
	}
	var cfg engineConfig
	for _, o := range opts {
		o.applyToEngine(&cfg)
	}
	if err := cfg.images.resolve(); err != nil {
		return nil, err
	}
	setupEnv()
	e := &Engine{logger: logger, network: DefaultNetwork, images: cfg.images, publicJava: publicJavaBase}
	prov, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tcLogger{e}))
	if err != nil {
		return nil, fmt.Errorf("localmesh: no container engine (DOCKER_HOST=%q): %w; run scripts/podman.sh (or make deps)", os.Getenv("DOCKER_HOST"), err)
	}
	if err := prov.Health(ctx); err != nil {
		_ = prov.Close()
		return nil, fmt.Errorf("localmesh: the container engine at %q does not answer: %w; run scripts/podman.sh (or make deps)", os.Getenv("DOCKER_HOST"), err)
	}
	e.prov, e.api = prov, prov.Client()
	if n := e.CleanStale(ctx); n > 0 {
		logger.Info("localmesh: removed containers left by an earlier run", "count", n)
	}
	if err := e.ensureNetwork(ctx); err != nil {
		_ = prov.Close()
		return nil, err
	}
	return e, nil
}

// Close releases the engine connection. Workloads must be stopped first.
func (e *Engine) Close() error { return e.prov.Close() }

// ImageSource is where the engine's images come from.
func (e *Engine) ImageSource() ImageSource { return e.images.source }

// Network is the name of the container network workloads join.
func (e *Engine) Network() string { return e.network }

// Gateway is the host's address on the workload network: how a container
// reaches a process on the host (istiod, for one).
func (e *Engine) Gateway() string { return e.gateway.String() }

func (e *Engine) ensureNetwork(ctx context.Context) error {
	res, err := e.api.NetworkInspect(ctx, e.network, client.NetworkInspectOptions{})
	if err != nil {
		subnet := defaultSubnet
		if s := os.Getenv("SHOAL_CONTAINER_SUBNET"); s != "" {
			subnet = s
		}
		p, perr := netip.ParsePrefix(subnet)
		if perr != nil || !p.Addr().Is4() {
			return fmt.Errorf("localmesh: SHOAL_CONTAINER_SUBNET=%q is not an IPv4 CIDR prefix", subnet)
		}
		p = p.Masked()
		gw := p.Addr().Next()
		e.logger.Info("localmesh: creating container network", "name", e.network, "subnet", p)
		_, cerr := e.api.NetworkCreate(ctx, e.network, client.NetworkCreateOptions{
			Driver: "bridge",
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: p, Gateway: gw}}},
			Labels: map[string]string{"io.shoalmesh.localmesh": "true"},
		})
		if cerr != nil {
			if res2, err2 := e.api.NetworkInspect(ctx, e.network, client.NetworkInspectOptions{}); err2 == nil {
				res = res2 // created meanwhile by a concurrent run
			} else {
				return fmt.Errorf("localmesh: create container network %s (%s): %w; set SHOAL_CONTAINER_SUBNET to a free range", e.network, p, cerr)
			}
		} else if res, err = e.api.NetworkInspect(ctx, e.network, client.NetworkInspectOptions{}); err != nil {
			return fmt.Errorf("localmesh: inspect container network %s: %w", e.network, err)
		}
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Subnet.IsValid() && c.Subnet.Addr().Is4() {
			e.subnet = c.Subnet.Masked()
			e.gateway = c.Gateway
			if !e.gateway.IsValid() {
				e.gateway = e.subnet.Addr().Next()
			}
			return nil
		}
	}
	return fmt.Errorf("localmesh: container network %s has no IPv4 subnet; remove it (podman network rm %s) and retry", e.network, e.network)
}

// addressCandidates returns n addresses of the subnet to try for a new
// workload, starting after the last one handed out. The engine refuses an
// address in use, and the caller then tries the next.
func (e *Engine) addressCandidates(n int) []netip.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	bits := 32 - e.subnet.Bits()
	size := uint32(1) << bits
	if bits > 16 {
		size = 1 << 16
	}
	if e.next == 0 {
		// Spread concurrent runs apart: start at an offset from our PID.
		e.next = uint32(os.Getpid()*7) % max(size-8, 1)
	}
	base := e.subnet.Addr().As4()
	b := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		e.next = (e.next + 1) % size
		off := e.next
		if off < 2 || off == size-1 { // network, gateway, broadcast
			continue
		}
		v := b + off
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if a == e.gateway {
			continue
		}
		out = append(out, a)
	}
	return out
}

// CleanStale removes containers created by runs whose process is gone
// (found by the harness's owner label). It returns how many it removed.
func (e *Engine) CleanStale(ctx context.Context) int {
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", labelOwner),
	})
	if err != nil {
		return 0
	}
	removed := 0
	for _, c := range res.Items {
		owner, err := strconv.Atoi(c.Labels[labelOwner])
		if err == nil && owner > 1 && alive(owner) {
			continue
		}
		if _, err := e.api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err == nil {
			removed++
		}
	}
	return removed
}

// Containers lists the containers this process created and has not
// removed yet (by name).
func (e *Engine) Containers(ctx context.Context) []string {
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", labelOwner+"="+strconv.Itoa(os.Getpid())),
	})
	if err != nil {
		return []string{"(cannot list: " + err.Error() + ")"}
	}
	var out []string
	for _, c := range res.Items {
		out = append(out, strings.Join(c.Names, ","))
	}
	return out
}

// isAddressInUse tells the engine's "address taken" error from others.
func isAddressInUse(err error) bool {
	if err == nil {
		return false
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "already in use") || strings.Contains(s, "already allocated") ||
		strings.Contains(s, "address in use") || strings.Contains(s, "requested address is not available")
}

var errNoAddress = errors.New("localmesh: no free address on the container network")
