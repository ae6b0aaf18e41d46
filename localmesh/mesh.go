package localmesh

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/shoalmesh/shoal/localmesh/adsprobe"
	"github.com/shoalmesh/shoal/localmesh/controlplane"
)

// Option configures Start.
type Option interface{ applyToMesh(*config) }

type meshOption func(*config)

func (o meshOption) applyToMesh(c *config) { o(c) }

type config struct {
	dir        string
	istiods    int
	kcm        bool
	logger     *slog.Logger
	keepLogs   bool
	logDir     string
	readyLimit time.Duration
	images     imageConfig
	// istiodImage is the image istiod containers run (PublicIstiodImage;
	// tests here, without a registry, give a stand-in built locally).
	istiodImage string
}

// WithBinDir sets where the control-plane binaries are (default
// $SHOAL_CONTROLPLANE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/shoal/controlplane).
func WithBinDir(dir string) Option { return meshOption(func(c *config) { c.dir = dir }) }

// WithIstiods sets how many istiod replicas run against the API server
// (default 1).
func WithIstiods(n int) Option { return meshOption(func(c *config) { c.istiods = n }) }

// WithoutControllerManager skips kube-controller-manager (no EndpointSlices
// for Services with Pods; WorkloadEntries do not need it).
func WithoutControllerManager() Option { return meshOption(func(c *config) { c.kcm = false }) }

// WithLogger sets the logger for progress messages.
func WithLogger(l *slog.Logger) Option { return meshOption(func(c *config) { c.logger = l }) }

// DefaultBinDir is where controlplane.Builder puts the binaries by
// default (controlplane.DefaultDir).
func DefaultBinDir() string { return controlplane.DefaultDir() }

// Mesh is a running control plane. Stop it when done.
type Mesh struct {
	cfg     config
	dir     string // per-run state: certs, kubeconfig, logs, etcd data
	bin     string
	token   string
	etcd    *proc
	api     *proc
	kcm     *proc
	apiAddr string
	etcdURL string
	eng     *Engine // runs the istiod containers of PublicImages; nil for LocalImages

	mu      sync.Mutex
	istiods []*istiod

	restCfg *rest.Config
	kube    kubernetes.Interface
	dyn     dynamic.Interface
	applier *applier
}

type istiod struct {
	comp  component // the pilot-discovery process, or its container
	ports map[string]int
}

// Start brings up etcd, kube-apiserver, kube-controller-manager, the Istio
// CRDs and the istiod replicas, and returns when every part answers.
func Start(ctx context.Context, opts ...Option) (_ *Mesh, err error) {
	cfg := config{istiods: 1, kcm: true, logger: slog.Default(), readyLimit: 2 * time.Minute, istiodImage: PublicIstiodImage}
	for _, o := range opts {
		o.applyToMesh(&cfg)
	}
	if err := cfg.images.resolve(); err != nil {
		return nil, err
	}
	if cfg.dir == "" {
		cfg.dir = DefaultBinDir()
	}
	if cfg.istiods < 0 {
		return nil, fmt.Errorf("localmesh: %d istiod replicas; want 0 or more", cfg.istiods)
	}
	bin := filepath.Join(cfg.dir, "bin")
	for _, b := range requiredBinaries(cfg.images.source) {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("localmesh: %s is not built in %s; %s", b, bin, buildHint(cfg.images.source))
		}
	}
	if n := CleanStale(); n > 0 {
		cfg.logger.Info("localmesh: stopped processes left by an earlier run", "count", n)
	}
	dir, err := os.MkdirTemp("", "shoal-localmesh-")
	if err != nil {
		return nil, err
	}
	m := &Mesh{cfg: cfg, dir: dir, bin: bin}
	defer func() {
		if err != nil {
			// Keep what the components said about the failure.
			m.cfg.keepLogs = true
			m.Stop()
			if m.hasLogs() {
				err = fmt.Errorf("%w (control-plane logs: %s)", err, m.LogDir())
			}
		}
	}()
	if cfg.images.source == PublicImages {
		// istiod runs as a container: have its image before anything starts,
		// so that an engine that cannot pull fails the run at once.
		if m.eng, err = NewEngine(ctx, cfg.logger, cfg.images.options()...); err != nil {
			return nil, err
		}
		if _, err := m.eng.ensureImage(ctx, cfg.istiodImage); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.readyLimit)
	defer cancel()
	start := time.Now()
	cfg.logger.Info("localmesh: starting etcd", "logs", m.LogDir())
	if err := m.startEtcd(ctx); err != nil {
		return nil, err
	}
	cfg.logger.Info("localmesh: starting kube-apiserver")
	if err := m.startAPIServer(ctx); err != nil {
		return nil, err
	}
	if cfg.kcm {
		cfg.logger.Info("localmesh: starting kube-controller-manager")
		if err := m.startControllerManager(); err != nil {
			return nil, err
		}
	}
	cfg.logger.Info("localmesh: installing Istio's CRDs")
	if err := m.installCRDs(ctx); err != nil {
		return nil, err
	}
	for i := range cfg.istiods {
		cfg.logger.Info("localmesh: starting istiod", "replica", i)
		if err := m.StartIstiod(ctx, i); err != nil {
			return nil, err
		}
	}
	cfg.logger.Info("localmesh: control plane ready", "apiserver", m.apiAddr, "istiods", cfg.istiods, "images", cfg.images.source, "took", time.Since(start).Round(time.Millisecond))
	return m, nil
}

// Dir is the run's state directory (kubeconfig, logs).
func (m *Mesh) Dir() string { return m.dir }

// Kubeconfig is the path of a kubeconfig for the API server (admin token).
func (m *Mesh) Kubeconfig() string { return filepath.Join(m.dir, "kubeconfig") }

// Kube returns a client of the API server.
func (m *Mesh) Kube() kubernetes.Interface { return m.kube }

// Dynamic returns a dynamic client of the API server.
func (m *Mesh) Dynamic() dynamic.Interface { return m.dyn }

// RESTConfig returns the client configuration of the API server.
func (m *Mesh) RESTConfig() *rest.Config { return rest.CopyConfig(m.restCfg) }

// IstiodAddr returns the plaintext xDS address (host:port) of replica i.
func (m *Mesh) IstiodAddr(i int) string { return loopbackAddr(m.istiodPort(i, "grpc")) }

// IstiodTLSAddr returns the TLS address (host:port) of replica i: istiod's
// 15012-style port serving xDS and the CA (IstioCertificateService) to
// callers with a service-account token. Its certificate names
// IstiodServerName, not the address.
func (m *Mesh) IstiodTLSAddr(i int) string { return loopbackAddr(m.istiodPort(i, "secure")) }

// loopbackAddr is 127.0.0.1:port, "" for port 0.
func loopbackAddr(port int) string {
	if port == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// istiodPort is replica i's port of the given name, 0 if there is none.
func (m *Mesh) istiodPort(i int, name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i < 0 || i >= len(m.istiods) || m.istiods[i] == nil {
		return 0
	}
	return m.istiods[i].ports[name]
}

// IstiodAddrFrom returns replica i's plaintext xDS address as seen from a
// workload container of e (the host's address on the container network).
func (m *Mesh) IstiodAddrFrom(e *Engine, i int) string {
	p := m.istiodPort(i, "grpc")
	if p == 0 {
		return ""
	}
	return net.JoinHostPort(e.Gateway(), strconv.Itoa(p))
}

// Stop stops everything in order: istiods, controller-manager, API server,
// etcd (the API server hangs if etcd goes first), and removes the run
// directory (see WithLogDir and WithKeepLogs for the logs).
func (m *Mesh) Stop() {
	m.mu.Lock()
	ids := m.istiods
	m.istiods = nil
	m.mu.Unlock()
	for _, d := range ids {
		if d != nil {
			d.comp.stop(10 * time.Second)
		}
	}
	m.kcm.stop(10 * time.Second)
	m.api.stop(15 * time.Second)
	m.etcd.stop(10 * time.Second)
	if m.eng != nil {
		_ = m.eng.Close()
	}
	m.removeRunDir(m.cfg.keepLogs || os.Getenv(EnvKeepLogs) != "")
}

func (m *Mesh) startEtcd(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	m.etcdURL = client
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	m.etcd, err = startProc(m.LogDir(), "etcd", filepath.Join(m.bin, "etcd"), []string{
		"--name=localmesh", "--data-dir=" + filepath.Join(m.dir, "etcd"),
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=localmesh=" + peer, "--log-level=warn",
	}, nil)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: time.Second}
	return waitFor(ctx, "etcd", m.etcd, 100*time.Millisecond, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, client+"/health", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd /health: %s", resp.Status)
		}
		return nil
	})
}

func writeKey(path string) (*rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return key, os.WriteFile(path, b, 0o600)
}

func (m *Mesh) startAPIServer(ctx context.Context) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	key, err := writeKey(filepath.Join(m.dir, "sa.key"))
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(m.dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return err
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	m.token = hex.EncodeToString(tok)
	if err := os.WriteFile(filepath.Join(m.dir, "tokens.csv"), []byte(m.token+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		return err
	}
	m.apiAddr = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	m.api, err = startProc(m.LogDir(), "kube-apiserver", filepath.Join(m.bin, "kube-apiserver"), []string{
		"--etcd-servers=" + m.etcdURL,
		// All interfaces, so that workload containers given KubeAccess reach
		// it at the container network's gateway (token auth and RBAC apply).
		"--bind-address=0.0.0.0", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(ports[0]),
		"--cert-dir=" + filepath.Join(m.dir, "apiserver-certs"),
		"--token-auth-file=" + filepath.Join(m.dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(m.dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(m.dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--disable-admission-plugins=ServiceAccount",
		"--v=0",
	}, nil)
	if err != nil {
		return err
	}
	m.restCfg = &rest.Config{Host: m.apiAddr, BearerToken: m.token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 100, Burst: 200}
	if err := m.writeKubeconfig(); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // our own loopback API server with a self-signed cert
	if err := waitFor(ctx, "kube-apiserver", m.api, 200*time.Millisecond, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.apiAddr+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+m.token)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	}); err != nil {
		return err
	}
	if m.kube, err = kubernetes.NewForConfig(m.restCfg); err != nil {
		return err
	}
	if m.dyn, err = dynamic.NewForConfig(m.restCfg); err != nil {
		return err
	}
	m.applier = newApplier(m.restCfg, m.dyn)
	return nil
}

func (m *Mesh) writeKubeconfig() error {
	return os.WriteFile(m.Kubeconfig(), []byte(m.kubeconfigFor(m.apiAddr)), 0o600)
}

// kubeconfigFor renders a kubeconfig for the API server at server.
func (m *Mesh) kubeconfigFor(server string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: localmesh
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: localmesh
  context: {cluster: localmesh, user: admin}
current-context: localmesh
`, server, m.token)
}

func (m *Mesh) startControllerManager() error {
	var err error
	m.kcm, err = startProc(m.LogDir(), "kube-controller-manager", filepath.Join(m.bin, "kube-controller-manager"), []string{
		"--kubeconfig=" + m.Kubeconfig(),
		"--controllers=endpoint,endpointslice,endpointslicemirroring,namespace,garbagecollector",
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--v=0",
	}, nil)
	return err
}

// StartIstiod starts replica i and waits until it answers on an ADS stream.
// A replica that ran before (see StopIstiod) comes back on the same ports,
// as a restarted istiod Pod does behind its Service, so clients reconnect to
// the address they know.
func (m *Mesh) StartIstiod(ctx context.Context, i int) error {
	if i < 0 {
		return fmt.Errorf("localmesh: istiod replica %d; want 0 or more", i)
	}
	names := []string{"grpc", "secure", "http", "https", "monitoring", "ctrlz"}
	pm := map[string]int{}
	var old *istiod
	m.mu.Lock()
	if i < len(m.istiods) && m.istiods[i] != nil {
		old = m.istiods[i]
		for k, v := range old.ports {
			pm[k] = v
		}
	}
	m.mu.Unlock()
	if len(pm) == 0 {
		ports, err := freePorts(len(names))
		if err != nil {
			return err
		}
		for j, n := range names {
			pm[n] = ports[j]
		}
	}
	name := fmt.Sprintf("istiod-%d", i)
	if old != nil {
		old.comp.stop(5 * time.Second) // frees the ports (and a container's name)
	}
	var c component
	var err error
	if m.eng != nil {
		c, err = m.startIstiodContainer(ctx, name, pm)
	} else {
		c, err = m.startIstiodProcess(name, pm)
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	for len(m.istiods) <= i {
		m.istiods = append(m.istiods, nil)
	}
	m.istiods[i] = &istiod{comp: c, ports: pm}
	m.mu.Unlock()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(pm["grpc"]))
	return waitFor(ctx, name, c, 200*time.Millisecond, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return adsprobe.Ping(cctx, addr)
	})
}

// StopIstiod kills replica i (SIGKILL: as a crash would), keeping its slot
// so StartIstiod can bring it back.
func (m *Mesh) StopIstiod(i int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i < 0 || i >= len(m.istiods) || m.istiods[i] == nil {
		return fmt.Errorf("localmesh: no istiod replica %d", i)
	}
	m.istiods[i].comp.stop(0)
	return nil
}

// Apply creates or updates the Kubernetes objects of a YAML stream (server
// side apply), like kubectl apply -f.
func (m *Mesh) Apply(ctx context.Context, yaml string) error {
	if m.applier == nil {
		return errors.New("localmesh: Apply before the API server started")
	}
	return m.applier.apply(ctx, []byte(yaml))
}

// Delete deletes the Kubernetes objects of a YAML stream, like kubectl
// delete -f: it tries every object and returns the errors of those it could
// not delete (apierrors.IsNotFound tells a missing one).
func (m *Mesh) Delete(ctx context.Context, yaml string) error {
	if m.applier == nil {
		return errors.New("localmesh: Delete before the API server started")
	}
	return m.applier.delete(ctx, []byte(yaml))
}

// Component is one running control-plane process (for PublicImages,
// istiod's is its container's).
type Component struct {
	Name string
	PID  int
	// RSS is the resident memory in bytes (0 if unknown).
	RSS int64
}

// Components lists the running processes of the control plane with their
// resident memory, for status output and reports.
func (m *Mesh) Components() []Component {
	var cs []component
	for _, p := range []*proc{m.etcd, m.api, m.kcm} {
		if p != nil {
			cs = append(cs, p)
		}
	}
	m.mu.Lock()
	for _, d := range m.istiods {
		if d != nil {
			cs = append(cs, d.comp)
		}
	}
	m.mu.Unlock()
	var out []Component
	for _, c := range cs {
		if !c.running() {
			continue
		}
		pid := c.hostPID()
		out = append(out, Component{Name: c.what(), PID: pid, RSS: rss(pid)})
	}
	return out
}

// rss reads VmRSS from /proc.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
