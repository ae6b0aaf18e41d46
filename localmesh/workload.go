package localmesh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkloadSpec describes a workload container and the Pod that stands for
// it in the API server.
type WorkloadSpec struct {
	// Name names the Pod and the container (unique within the namespace).
	Name string
	// Namespace of the Pod; "default" when empty. Created if missing.
	Namespace string
	// Image to run, e.g. from Engine.BuildGoImage.
	Image string
	// Labels of the Pod (app, version, ...): what Services and
	// DestinationRule subsets select.
	Labels map[string]string
	// Env is added to what the harness sets itself, as the Kubernetes
	// downward API and an Istio injector would: POD_NAME, POD_NAMESPACE,
	// INSTANCE_IP, SHOAL_XDS_ADDRESS (replica Istiod's plaintext xDS address
	// as seen from the container) and ISTIO_METAJSON_LABELS. Values given
	// here win.
	Env map[string]string
	// Args are the container's command-line arguments.
	Args []string
	// ReadyPort, when set, makes the Pod Ready only once a TCP connection to
	// the container's address on this port succeeds (a readiness probe);
	// otherwise the Pod is Ready as soon as the container runs.
	ReadyPort int
	// Istiod is the replica the workload talks to (SHOAL_XDS_ADDRESS).
	Istiod int
	// KubeAccess gives the workload a kubeconfig for the API server (at
	// KubeconfigPath, with KUBECONFIG set), as a Pod's service account
	// would, for providers that publish their own ServiceEntry. The
	// credentials are the harness's admin token: a local harness, not a
	// model of RBAC.
	KubeAccess bool
	// ServiceAccount is the Pod's service account (spec.serviceAccountName,
	// also in SERVICE_ACCOUNT); created if missing. Empty: none named.
	ServiceAccount string
	// IstioIdentity mounts what Istio's injector and the kubelet give a
	// proxyless Pod to get its certificate from istiod: a TokenRequest token
	// of ServiceAccount for audience IstioCAAudience at IstioTokenPath, and
	// the mesh root (the istio-ca-root-cert ConfigMap) at IstioRootCertPath;
	// SHOAL_XDS_ADDRESS then names istiod's TLS port (SHOAL_XDS_TLS=true).
	// The token is written once, at start, valid for an hour: a container
	// running longer sees no rotation. Needs ServiceAccount.
	IstioIdentity bool
	// Files are written into the container before it starts (path in the
	// container to content), e.g. a shoal.yaml.
	Files map[string]string
}

// Where a workload with IstioIdentity finds its token and root: the paths
// Istio's injector mounts, and registry-istio's defaults.
const (
	IstioTokenPath    = "/var/run/secrets/tokens/istio-token" //nolint:gosec // a path, not a credential
	IstioRootCertPath = "/var/run/secrets/istio/root-cert.pem"
)

// KubeconfigPath is where a workload with KubeAccess finds its kubeconfig.
const KubeconfigPath = "/var/run/shoal/kubeconfig"

// Workload is a running container published as a Pod. The harness reports
// the container's state into the Pod's status (phase, podIP, Ready), the one
// job a kubelet would do; everything else (EndpointSlices, istiod's view) is
// the real controller-manager and the real istiod.
type Workload struct {
	mesh *Mesh
	eng  *Engine
	spec WorkloadSpec
	ctr  testcontainers.Container
	ip   netip.Addr

	stopOnce sync.Once
	stopped  chan struct{} // closed to end the monitor
	monDone  chan struct{}
	mu       sync.Mutex
	exited   bool
}

// tcLogger sends testcontainers-go's chatter to the debug log.
type tcLogger struct{ e *Engine }

func (l tcLogger) Printf(format string, v ...any) { l.e.logger.Debug(fmt.Sprintf(format, v...)) }

// RunWorkload starts a workload container on the engine's network with an
// address chosen up front, publishes it as a Pod, and returns once the Pod
// is Ready (see WorkloadSpec.ReadyPort) or ctx ends.
func (m *Mesh) RunWorkload(ctx context.Context, e *Engine, spec WorkloadSpec) (_ *Workload, err error) {
	if spec.Name == "" || spec.Image == "" {
		return nil, fmt.Errorf("localmesh: a workload needs Name and Image, got %+v", spec)
	}
	if spec.Namespace == "" {
		spec.Namespace = "default"
	}
	if err := m.ensureNamespace(ctx, spec.Namespace); err != nil {
		return nil, err
	}
	if err := m.ensureNode(ctx, e); err != nil {
		return nil, err
	}
	identityFiles, err := m.identityFiles(ctx, spec)
	if err != nil {
		return nil, err
	}
	xds := m.istiodPort(spec.Istiod, "grpc")
	if xds == 0 {
		return nil, fmt.Errorf("localmesh: no istiod replica %d for workload %s", spec.Istiod, spec.Name)
	}
	w := &Workload{mesh: m, eng: e, spec: spec, stopped: make(chan struct{}), monDone: make(chan struct{})}
	// The Pod exists before its container starts, as in Kubernetes: a
	// workload may look itself up (e.g. to own what it publishes).
	if err := m.createPod(ctx, w); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = w.deletePod(context.WithoutCancel(ctx))
		}
	}()
	for _, ip := range e.addressCandidates(8) {
		env := map[string]string{
			"POD_NAME":          spec.Name,
			"POD_NAMESPACE":     spec.Namespace,
			"INSTANCE_IP":       ip.String(),
			"SHOAL_XDS_ADDRESS": net.JoinHostPort(e.Gateway(), strconv.Itoa(xds)),
		}
		if len(spec.Labels) > 0 {
			labels, err := json.Marshal(spec.Labels)
			if err != nil {
				return nil, err
			}
			env["ISTIO_METAJSON_LABELS"] = string(labels)
		}
		if spec.ServiceAccount != "" {
			env["SERVICE_ACCOUNT"] = spec.ServiceAccount
		}
		if spec.IstioIdentity {
			env["SHOAL_XDS_ADDRESS"] = net.JoinHostPort(e.Gateway(), strconv.Itoa(m.istiodPort(spec.Istiod, "secure")))
			env["SHOAL_XDS_TLS"] = "true"
		}
		files := append([]testcontainers.ContainerFile(nil), identityFiles...)
		for path, content := range spec.Files {
			files = append(files, testcontainers.ContainerFile{Reader: strings.NewReader(content), ContainerFilePath: path, FileMode: 0o644})
		}
		if spec.KubeAccess {
			server := "https://" + net.JoinHostPort(e.Gateway(), m.apiPort())
			files = append(files, testcontainers.ContainerFile{
				Reader: strings.NewReader(m.kubeconfigFor(server)), ContainerFilePath: KubeconfigPath, FileMode: 0o644,
			})
			env["KUBECONFIG"] = KubeconfigPath
		}
		for k, v := range spec.Env {
			env[k] = v
		}
		addr := ip
		req := testcontainers.GenericContainerRequest{
			ContainerRequest: testcontainers.ContainerRequest{
				Image:    spec.Image,
				Name:     fmt.Sprintf("shoal-%s-%s-%d", spec.Namespace, spec.Name, os.Getpid()),
				Env:      env,
				Cmd:      spec.Args,
				Networks: []string{e.network},
				Files:    files,
				Labels: map[string]string{
					labelOwner: strconv.Itoa(os.Getpid()),
					labelPod:   spec.Namespace + "/" + spec.Name,
				},
				// Stdin stays open with no writer, as for a Pod container with
				// stdin: true: programs that stop when stdin closes keep running.
				ConfigModifier: func(c *container.Config) { c.OpenStdin = true },
				EndpointSettingsModifier: func(eps map[string]*network.EndpointSettings) {
					s := eps[e.network]
					if s == nil {
						s = &network.EndpointSettings{}
						eps[e.network] = s
					}
					s.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: addr}
				},
			},
			Started: true,
			Logger:  tcLogger{e},
		}
		ctr, cerr := testcontainers.GenericContainer(ctx, req)
		if cerr != nil {
			if ctr != nil {
				_ = ctr.Terminate(context.WithoutCancel(ctx))
			}
			if isAddressInUse(cerr) {
				continue
			}
			return nil, fmt.Errorf("localmesh: start workload %s (%s): %w", spec.Name, spec.Image, cerr)
		}
		w.ctr, w.ip = ctr, ip
		break
	}
	if w.ctr == nil {
		return nil, errNoAddress
	}
	defer func() {
		if err != nil {
			_ = w.ctr.Terminate(context.WithoutCancel(ctx))
		}
	}()
	if err := w.setStatus(ctx, false, corev1.PodPending); err != nil {
		return nil, err
	}
	if spec.ReadyPort > 0 {
		target := net.JoinHostPort(w.ip.String(), strconv.Itoa(spec.ReadyPort))
		if err := pollTCP(ctx, target, w); err != nil {
			return nil, fmt.Errorf("localmesh: workload %s never listened on %s: %w\n%s", spec.Name, target, err, w.Logs(context.WithoutCancel(ctx)))
		}
	}
	if err := w.setStatus(ctx, true, corev1.PodRunning); err != nil {
		return nil, err
	}
	go w.monitor() //nolint:gosec // the monitor outlives this call: it runs until Stop or the container exits
	return w, nil
}

// identityFiles creates spec's ServiceAccount and, with IstioIdentity,
// returns its istio-ca token and the mesh root as container files.
func (m *Mesh) identityFiles(ctx context.Context, spec WorkloadSpec) ([]testcontainers.ContainerFile, error) {
	if spec.IstioIdentity && spec.ServiceAccount == "" {
		return nil, fmt.Errorf("localmesh: workload %s has IstioIdentity but no ServiceAccount; name one", spec.Name)
	}
	if spec.ServiceAccount == "" {
		return nil, nil
	}
	if err := m.CreateServiceAccount(ctx, spec.Namespace, spec.ServiceAccount); err != nil {
		return nil, err
	}
	if !spec.IstioIdentity {
		return nil, nil
	}
	tok, err := m.ServiceAccountToken(ctx, spec.Namespace, spec.ServiceAccount, IstioCAAudience, time.Hour)
	if err != nil {
		return nil, err
	}
	root, err := m.RootCert(ctx, spec.Namespace)
	if err != nil {
		return nil, err
	}
	return []testcontainers.ContainerFile{
		{Reader: strings.NewReader(tok), ContainerFilePath: IstioTokenPath, FileMode: 0o644},
		{Reader: bytes.NewReader(root), ContainerFilePath: IstioRootCertPath, FileMode: 0o644},
	}, nil
}

// IP is the workload's address (the Pod IP).
func (w *Workload) IP() string { return w.ip.String() }

// Addr is IP:port.
func (w *Workload) Addr(port int) string { return net.JoinHostPort(w.IP(), strconv.Itoa(port)) }

// Name is the Pod's name.
func (w *Workload) Name() string { return w.spec.Name }

// Logs returns what the container printed so far.
func (w *Workload) Logs(ctx context.Context) string {
	rc, err := w.ctr.Logs(ctx)
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	defer func() { _ = rc.Close() }()
	var b bytes.Buffer
	_, _ = io.Copy(&b, io.LimitReader(rc, 1<<20))
	return b.String()
}

// Stop stops the container gracefully (SIGTERM, then SIGKILL after grace),
// marks the Pod not ready and deletes it, and removes the container.
func (w *Workload) Stop(ctx context.Context, grace time.Duration) error {
	var errs []error
	w.stopOnce.Do(func() {
		if err := w.ctr.Stop(ctx, &grace); err != nil {
			errs = append(errs, err)
		}
		close(w.stopped)
		<-w.monDone
		if err := w.deletePod(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := w.ctr.Terminate(ctx); err != nil {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

// monitor reports the container's exit into the Pod status: Ready false,
// phase Succeeded or Failed, as a kubelet would.
func (w *Workload) monitor() {
	defer close(w.monDone)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.stopped:
			w.reportExit()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := w.ctr.State(ctx)
		cancel()
		if err == nil && !st.Running {
			w.reportExit()
			return
		}
	}
}

func (w *Workload) reportExit() {
	w.mu.Lock()
	if w.exited {
		w.mu.Unlock()
		return
	}
	w.exited = true
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	phase := corev1.PodSucceeded
	if st, err := w.ctr.State(ctx); err == nil && st.ExitCode != 0 {
		phase = corev1.PodFailed
	}
	_ = w.setStatus(ctx, false, phase)
}

func (m *Mesh) ensureNamespace(ctx context.Context, ns string) error {
	return ensureNamespace(ctx, m.kube, ns)
}

// apiPort is the API server's port.
func (m *Mesh) apiPort() string {
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(m.apiAddr, "https://"))
	return p
}

// NodeName is the Node object that stands for the container engine's host:
// the EndpointSlice controller only takes Pods bound to a Node it knows.
const NodeName = "localmesh"

func (m *Mesh) ensureNode(ctx context.Context, e *Engine) error {
	nodes := m.kube.CoreV1().Nodes()
	node, err := nodes.Get(ctx, NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err = nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:   NodeName,
			Labels: map[string]string{"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux"},
		}}, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("localmesh: Node %s: %w", NodeName, err)
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return nil
		}
	}
	now := metav1.Now()
	node.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "LocalmeshReady",
		Message: "the container engine stands in for a kubelet", LastHeartbeatTime: now, LastTransitionTime: now,
	}}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: e.Gateway()}, {Type: corev1.NodeHostName, Address: NodeName}}
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("localmesh: Node %s status: %w", NodeName, err)
	}
	return nil
}

func (m *Mesh) createPod(ctx context.Context, w *Workload) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      w.spec.Name,
			Namespace: w.spec.Namespace,
			Labels:    w.spec.Labels,
		},
		Spec: corev1.PodSpec{
			NodeName:           NodeName,
			Containers:         []corev1.Container{{Name: "app", Image: w.spec.Image}},
			ServiceAccountName: w.spec.ServiceAccount,
		},
	}
	if w.spec.ReadyPort > 0 {
		pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: int32(w.spec.ReadyPort), Protocol: corev1.ProtocolTCP}}
	}
	if _, err := m.kube.CoreV1().Pods(w.spec.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("localmesh: create Pod %s/%s: %w", w.spec.Namespace, w.spec.Name, err)
	}
	return nil
}

// setStatus writes the Pod status a kubelet would report.
func (w *Workload) setStatus(ctx context.Context, ready bool, phase corev1.PodPhase) error {
	pods := w.mesh.kube.CoreV1().Pods(w.spec.Namespace)
	pod, err := pods.Get(ctx, w.spec.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("localmesh: get Pod %s/%s: %w", w.spec.Namespace, w.spec.Name, err)
	}
	now := metav1.Now()
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	if pod.Status.StartTime == nil {
		pod.Status.StartTime = &now
	}
	pod.Status.Phase = phase
	pod.Status.HostIP = w.eng.Gateway()
	pod.Status.PodIP = w.IP()
	pod.Status.PodIPs = []corev1.PodIP{{IP: w.IP()}}
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: cond, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: cond, LastTransitionTime: now},
	}
	running := phase == corev1.PodRunning || phase == corev1.PodPending
	cs := corev1.ContainerStatus{Name: "app", Image: w.spec.Image, ImageID: w.spec.Image, Ready: ready, ContainerID: "docker://" + w.ctr.GetContainerID()}
	if running {
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: *pod.Status.StartTime}
	} else {
		cs.State.Terminated = &corev1.ContainerStateTerminated{FinishedAt: now}
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	if _, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("localmesh: update Pod %s/%s status: %w", w.spec.Namespace, w.spec.Name, err)
	}
	return nil
}

func (w *Workload) deletePod(ctx context.Context) error {
	zero := int64(0)
	err := w.mesh.kube.CoreV1().Pods(w.spec.Namespace).Delete(ctx, w.spec.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("localmesh: delete Pod %s/%s: %w", w.spec.Namespace, w.spec.Name, err)
	}
	return nil
}

// pollTCP dials target until it connects, the container exits or ctx ends.
func pollTCP(ctx context.Context, target string, w *Workload) error {
	var d net.Dialer
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(cctx, "tcp", target)
		cancel()
		if err == nil {
			_ = c.Close()
			return nil
		}
		if !w.ctr.IsRunning() {
			if st, serr := w.ctr.State(ctx); serr == nil && !st.Running {
				return fmt.Errorf("the container exited with code %d", st.ExitCode)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
