package localmesh

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"

	"github.com/shoalmesh/shoal/localmesh/controlplane"
)

// meshConfig is istiod's mesh configuration.
const meshConfig = "rootNamespace: istio-system\ntrustDomain: cluster.local\n"

// Where an istiod container finds its configuration (copied in, readable
// by the image's user 1337; the host's copies are private to this user).
const (
	istiodKubeconfigPath = "/etc/shoal/kubeconfig"
	istiodMeshConfigPath = "/etc/shoal/mesh.yaml"
)

// requiredBinaries are the control-plane binaries Start needs from
// controlplane.Builder: all four for LocalImages; PublicImages runs
// istiod from its image and needs no pilot-discovery.
func requiredBinaries(s ImageSource) []string {
	var bins []string
	for _, c := range controlplane.Components(s == LocalImages) {
		bins = append(bins, c.Binary)
	}
	return bins
}

// buildHint says how to build the control plane for an image source
// (SHOAL_IMAGES=public builds no pilot-discovery), with or without a
// Shoal checkout.
func buildHint(s ImageSource) string {
	env := ""
	if s == PublicImages {
		env = EnvImages + "=public "
	}
	return "build it with `" + env + "go run github.com/shoalmesh/shoal/localmesh/cmd/shoal-controlplane` " +
		"(package localmesh/controlplane; `shoal dev up` builds it too), or set " + controlplane.EnvDir + " to where it is built"
}

// istiodArgs are pilot-discovery's flags for a replica on the ports pm,
// with its kubeconfig and mesh config at the given paths. The plaintext and
// TLS xDS ports listen on every interface (workload containers reach them
// at the network's gateway); the debug, HTTPS and monitoring ports listen
// on loopback for a process, and on every interface of a container, where
// only their ports published on the host's loopback reach them.
func istiodArgs(kubeconfig, mesh string, pm map[string]int, inContainer bool) []string {
	local := "127.0.0.1"
	if inContainer {
		local = ""
	}
	return []string{
		"discovery",
		"--kubeconfig=" + kubeconfig,
		"--meshConfig=" + mesh,
		"--grpcAddr=:" + strconv.Itoa(pm["grpc"]),
		"--secureGRPCAddr=:" + strconv.Itoa(pm["secure"]),
		"--httpAddr=" + local + ":" + strconv.Itoa(pm["http"]),
		"--httpsAddr=" + local + ":" + strconv.Itoa(pm["https"]),
		"--monitoringAddr=" + local + ":" + strconv.Itoa(pm["monitoring"]),
		"--ctrlz_port=" + strconv.Itoa(pm["ctrlz"]),
		"--domain=cluster.local",
		"--log_output_level=default:warn",
	}
}

// istiodEnv is the environment a replica named name runs with, as
// istiod's Deployment would set it.
func istiodEnv(name string) map[string]string {
	return map[string]string{
		"POD_NAMESPACE": "istio-system",
		"POD_NAME":      name,
		"REVISION":      "default",
		"CLUSTER_ID":    "Kubernetes",
		"PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION": "true",
	}
}

// envList turns env into sorted KEY=value pairs.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// startIstiodProcess runs replica name as the locally built pilot-discovery.
func (m *Mesh) startIstiodProcess(name string, pm map[string]int) (component, error) {
	mesh := filepath.Join(m.dir, "mesh.yaml")
	if err := os.WriteFile(mesh, []byte(meshConfig), 0o600); err != nil {
		return nil, err
	}
	return startProc(m.LogDir(), name, filepath.Join(m.bin, "pilot-discovery"),
		istiodArgs(m.Kubeconfig(), mesh, pm, false), envList(istiodEnv(name)))
}

// istiodPorts are the ports of pm an istiod container publishes, and
// whether each is also published on the container network's gateway (the
// xDS ports, which workload containers use). ctrlz stays inside: it listens
// on the container's localhost.
var istiodPorts = []struct {
	name    string
	gateway bool
}{{"grpc", true}, {"secure", true}, {"http", false}, {"https", false}, {"monitoring", false}}

// istiodContainerRequest is the container of replica name: the image's
// pilot-discovery with the flags and environment of the process, its
// kubeconfig (pointing at the API server through the gateway) and mesh
// config copied in, on the workload network, each port published on the
// same port of the host's loopback (the xDS ports also on the gateway), so
// that it is reached where the process would be.
func istiodContainerRequest(image, name, netName string, gateway netip.Addr, pm map[string]int, kubeconfig string) testcontainers.ContainerRequest {
	var exposed []string
	bindings := network.PortMap{}
	for _, p := range istiodPorts {
		port := strconv.Itoa(pm[p.name])
		exposed = append(exposed, port+"/tcp")
		b := []network.PortBinding{{HostIP: netip.AddrFrom4([4]byte{127, 0, 0, 1}), HostPort: port}}
		if p.gateway {
			b = append(b, network.PortBinding{HostIP: gateway, HostPort: port})
		}
		bindings[network.MustParsePort(port+"/tcp")] = b
	}
	return testcontainers.ContainerRequest{
		Image:        image,
		Name:         fmt.Sprintf("shoal-%s-%d", name, os.Getpid()),
		Cmd:          istiodArgs(istiodKubeconfigPath, istiodMeshConfigPath, pm, true),
		Env:          istiodEnv(name),
		Networks:     []string{netName},
		ExposedPorts: exposed,
		Files: []testcontainers.ContainerFile{
			{Reader: strings.NewReader(kubeconfig), ContainerFilePath: istiodKubeconfigPath, FileMode: 0o644},
			{Reader: strings.NewReader(meshConfig), ContainerFilePath: istiodMeshConfigPath, FileMode: 0o644},
		},
		Labels: map[string]string{
			labelOwner:     strconv.Itoa(os.Getpid()),
			labelComponent: name,
		},
		HostConfigModifier: func(hc *container.HostConfig) { hc.PortBindings = bindings },
	}
}

// startIstiodContainer runs replica name from PublicIstiodImage (which
// Start made sure the engine has).
func (m *Mesh) startIstiodContainer(ctx context.Context, name string, pm map[string]int) (component, error) {
	e := m.eng
	kubeconfig := m.kubeconfigFor("https://" + net.JoinHostPort(e.Gateway(), m.apiPort()))
	req := istiodContainerRequest(m.cfg.istiodImage, name, e.network, e.gateway, pm, kubeconfig)
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: req, Started: true, Logger: tcLogger{e},
	})
	if err != nil {
		if ctr != nil {
			_ = ctr.Terminate(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("localmesh: start %s (%s): %w", name, m.cfg.istiodImage, err)
	}
	return &ctrComponent{name: name, ctr: ctr, log: filepath.Join(m.LogDir(), name+".log")}, nil
}

// ctrComponent is a control-plane part running as a container.
type ctrComponent struct {
	name string
	ctr  testcontainers.Container
	log  string // where stop saves the container's output
}

func (c *ctrComponent) what() string { return c.name }

func (c *ctrComponent) state() (*container.State, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ctr.State(ctx)
}

func (c *ctrComponent) running() bool {
	st, err := c.state()
	return err == nil && st.Running
}

func (c *ctrComponent) exitError() error {
	st, err := c.state()
	if err != nil {
		return err
	}
	return fmt.Errorf("the container exited with code %d", st.ExitCode)
}

func (c *ctrComponent) hostPID() int {
	st, err := c.state()
	if err != nil {
		return 0
	}
	return st.Pid
}

// logs returns the container's output (at most 1 MiB).
func (c *ctrComponent) logs() []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := c.ctr.Logs(ctx)
	if err != nil {
		return nil
	}
	defer func() { _ = rc.Close() }()
	var b bytes.Buffer
	_, _ = io.Copy(&b, io.LimitReader(rc, 1<<20))
	return b.Bytes()
}

func (c *ctrComponent) tail() string {
	b := c.logs()
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// stop stops the container (SIGKILL at once for grace 0), keeps its
// output in the run's directory as a process's log would be, and removes
// it, freeing its name and ports.
func (c *ctrComponent) stop(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace+30*time.Second)
	defer cancel()
	if c.running() {
		_ = c.ctr.Stop(ctx, &grace)
	}
	if b := c.logs(); b != nil {
		appendLog(c.log, b)
	}
	_ = c.ctr.Terminate(ctx)
}
