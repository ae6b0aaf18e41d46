package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
	"github.com/shoalmesh/shoal/registry-istio/xdsmesh"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

type devDeployFlags struct {
	version, namespace, output string
	timeout                    time.Duration
}

var labelValueRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$`)

func newDevDeployCmd(e *env) *cobra.Command {
	f := &devDeployFlags{}
	cmd := &cobra.Command{
		Use:   "deploy [dir]",
		Short: "Build an application's image and run it in the local mesh",
		Long: `Build the provider of an application made by 'shoal new' (dir, default .) into
an image (a static binary FROM scratch, with podman or Docker) and run it in
the local mesh of 'shoal dev up' as a Pod labelled app=<name> and
version=<--version>, as the chart's Deployment would: the container gets
POD_NAME, POD_NAMESPACE, INSTANCE_IP, istiod's address and the istio
registry. Before that it applies the chart's ServiceEntry
(deploy/chart/templates/serviceentry.yaml); it returns once istiod serves
the new Pod's address under the ServiceEntry's host.

Deploy one version after another for a canary; deploying a version again
replaces it. 'shoal dev down' stops them all.`,
		Example: `  shoal dev deploy ./demoapp
  shoal dev deploy ./demoapp --version v2
  shoal dev apply -f demoapp/deploy/canary.yaml`,
		Args: rangeArgs(0, 1, "at most one directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runDevDeploy(cmd.Context(), e, dir, f)
		},
	}
	cmd.Flags().StringVar(&f.version, "version", "v1", "the version label of the Pod (DestinationRule subsets select on it)")
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "default", "the namespace of the Pod and the ServiceEntry")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for the image, the Pod and istiod")
	cmd.Flags().StringVarP(&f.output, "output", "o", formatText, "output format: text, json or yaml")
	return cmd
}

// chartApp is what dev deploy reads from an application's chart.
type chartApp struct {
	Name  string `yaml:"name"`
	Port  int    `yaml:"port"`
	Admin struct {
		Port int `yaml:"port"`
	} `yaml:"admin"`
	dir          string // absolute
	serviceEntry []byte // the chart's ServiceEntry as JSON
	host         string // its first host
	sePort       uint32 // its port
}

// readChartApp reads deploy/chart of the application in dir.
func readChartApp(dir string) (*chartApp, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	notApp := func(what string, err error) error {
		return usageErrorf("%s is not an application made by 'shoal new': %s (%v); create one with 'shoal new <name>'", dir, what, err)
	}
	values, err := os.ReadFile(filepath.Join(abs, "deploy", "chart", "values.yaml")) //nolint:gosec // the user's application
	if err != nil {
		return nil, notApp("no deploy/chart/values.yaml", err)
	}
	if _, err := os.Stat(filepath.Join(abs, "cmd", "provider")); err != nil {
		return nil, notApp("no cmd/provider", err)
	}
	a := &chartApp{dir: abs}
	if err := yaml.Unmarshal(values, a); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "deploy", "chart", "values.yaml"), err)
	}
	if !appNameRE.MatchString(a.Name) || a.Port <= 0 || a.Port > 65535 || a.Admin.Port <= 0 || a.Admin.Port > 65535 {
		return nil, fmt.Errorf("%s: want name (lower-case letters, digits, dashes), port and admin.port (1-65535); got name %q, port %d, admin.port %d",
			filepath.Join(dir, "deploy", "chart", "values.yaml"), a.Name, a.Port, a.Admin.Port)
	}
	sePath := filepath.Join(abs, "deploy", "chart", "templates", "serviceentry.yaml")
	se, err := os.ReadFile(sePath) //nolint:gosec // the user's application
	if err != nil {
		return nil, notApp("no deploy/chart/templates/serviceentry.yaml", err)
	}
	if a.serviceEntry, a.host, a.sePort, err = chartServiceEntry(se); err != nil {
		return nil, fmt.Errorf("%s: %w", sePath, err)
	}
	return a, nil
}

// chartServiceEntry reads the ServiceEntry 'shoal new' wrote into the
// chart: mapping.Scheme.Manifest's JSON between comment and template
// lines.
func chartServiceEntry(file []byte) (manifest []byte, host string, port uint32, err error) {
	var b strings.Builder
	for line := range strings.SplitSeq(string(file), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") || strings.HasPrefix(t, "{{") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	var se struct {
		Kind string `json:"kind"`
		Spec struct {
			Hosts []string `json:"hosts"`
			Ports []struct {
				Number uint32 `json:"number"`
			} `json:"ports"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(b.String()), &se); err != nil {
		return nil, "", 0, fmt.Errorf("not the ServiceEntry 'shoal new' writes (%w); write it again with registry-istio's mapping.Scheme.Manifest", err)
	}
	if se.Kind != "ServiceEntry" || len(se.Spec.Hosts) == 0 || len(se.Spec.Ports) == 0 {
		return nil, "", 0, errors.New("a ServiceEntry with hosts and ports is expected")
	}
	return []byte(b.String()), se.Spec.Hosts[0], se.Spec.Ports[0].Number, nil
}

// devDeployResult is what dev deploy prints.
type devDeployResult struct {
	App       string `json:"app"`
	Version   string `json:"version"`
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	Image     string `json:"image"`
	Address   string `json:"address"`
	Admin     string `json:"admin"`
	Host      string `json:"host"`
}

func runDevDeploy(ctx context.Context, e *env, dir string, f *devDeployFlags) error {
	if err := checkFormat(f.output); err != nil {
		return err
	}
	if !labelValueRE.MatchString(f.version) {
		return usageErrorf("bad --version %q: use lower-case letters, digits and dashes (it is a label and part of the Pod's name), e.g. v2", f.version)
	}
	if !labelValueRE.MatchString(f.namespace) {
		return usageErrorf("bad --namespace %q: use lower-case letters, digits and dashes", f.namespace)
	}
	app, err := readChartApp(dir)
	if err != nil {
		return err
	}
	p, st, err := runningDevState()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	fmt.Fprintf(e.stderr, "building the image of %s/cmd/provider (static, FROM scratch)\n", dir)
	eng, err := localmesh.NewEngine(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		return &exitError{code: ExitMissingTool, err: err}
	}
	image, err := eng.BuildGoImage(ctx, localmesh.GoImage{Name: app.Name, Dir: app.dir, Package: "./cmd/provider"})
	_ = eng.Close()
	if err != nil {
		return err
	}

	kube, err := localmesh.NewClient(st.Kubeconfig)
	if err != nil {
		return err
	}
	manifest, err := namespaced(app.serviceEntry, f.namespace)
	if err != nil {
		return err
	}
	if err := kube.Apply(ctx, manifest); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "applied the chart's ServiceEntry (host %s)\n", app.host)

	pod := app.Name + "-" + f.version
	spec := devWorkloadSpec{
		Name: pod, Namespace: f.namespace, Image: image,
		Labels: map[string]string{"app": app.Name, "version": f.version},
		Env: map[string]string{
			// The chart's shoal.yaml: istiod is the registry.
			"SHOAL_REGISTRIES_0_NAME": "mesh",
			"SHOAL_REGISTRIES_0_KIND": "istio",
			"SHOAL_PROTOCOLS_0_PORT":  strconv.Itoa(app.Port),
			"SHOAL_ADMIN_ADDRESS":     "0.0.0.0:" + strconv.Itoa(app.Admin.Port),
			"SERVICE_ACCOUNT":         app.Name,
			// The Deployment's name, as the chart sets it.
			"ISTIO_META_WORKLOAD_NAME": pod,
		},
		ReadyPort: app.Port,
	}
	fmt.Fprintf(e.stderr, "starting Pod %s/%s (app=%s, version=%s)\n", f.namespace, pod, app.Name, f.version)
	wc := newDevWorkloadClient(p)
	var w devWorkload
	if err := wc.do(ctx, "POST", "/v1/workloads", spec, &w); err != nil {
		return fmt.Errorf("run %s in the local mesh: %w", pod, err)
	}
	addr := net.JoinHostPort(w.IP, strconv.Itoa(app.Port))
	if err := waitServed(ctx, st.XDSAddress, app.host, app.sePort, w.IP); err != nil {
		var logs string
		_ = wc.do(context.WithoutCancel(ctx), "GET", "/v1/workloads/"+f.namespace+"/"+pod+"/logs", nil, &logs)
		return fmt.Errorf("%s runs at %s, but istiod does not serve it under %s: %w\nthe provider's log:\n%s", pod, addr, app.host, err, logs)
	}
	res := &devDeployResult{
		App: app.Name, Version: f.version, Pod: pod, Namespace: f.namespace, Image: image,
		Address: addr, Admin: net.JoinHostPort(w.IP, strconv.Itoa(app.Admin.Port)),
		Host: net.JoinHostPort(app.host, strconv.Itoa(int(app.sePort))),
	}
	return printData(e.stdout, f.output, res, func(out io.Writer) error {
		fmt.Fprintf(out, "deployed %s %s as Pod %s/%s at %s (image %s)\n", res.App, res.Version, res.Namespace, res.Pod, res.Address, res.Image)
		fmt.Fprintf(out, "istiod serves it under %s; admin endpoint http://%s/metrics\n", res.Host, res.Admin)
		return nil
	})
}

// namespaced sets the namespace of a JSON object.
func namespaced(manifest []byte, ns string) ([]byte, error) {
	var obj map[string]any
	if err := json.Unmarshal(manifest, &obj); err != nil {
		return nil, err
	}
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		return nil, errors.New("the ServiceEntry has no metadata")
	}
	meta["namespace"] = ns
	return json.Marshal(obj)
}

// waitServed returns once istiod serves ip under host:port, as a consumer
// of the host would see it.
func waitServed(ctx context.Context, xds, host string, port uint32, ip string) error {
	cfg, err := meshConfig(xds, "shoal-deploy")
	if err != nil {
		return err
	}
	quiet := slog.New(slog.DiscardHandler)
	client, err := xdsclient.New(cfg, xdsclient.WithLogger(quiet), xdsclient.WithBackoff(100*time.Millisecond, time.Second))
	if err != nil {
		return err
	}
	defer client.Close()
	d := xdsmesh.NewDiscovery(client, xdsmesh.WithLogger(quiet))
	w, err := d.Watch(ctx, registry.Key{Interface: xdsmesh.TargetScheme + net.JoinHostPort(host, strconv.Itoa(int(port)))})
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		snap, err := w.Next(ctx)
		if err != nil {
			return err
		}
		if snapshotHasIP(snap, ip) {
			return nil
		}
	}
}

func snapshotHasIP(s *mesh.Snapshot, ip string) bool {
	has := func(eps []mesh.Endpoint) bool {
		for _, e := range eps {
			if h, _, err := net.SplitHostPort(e.Address); err == nil && h == ip {
				return true
			}
		}
		return false
	}
	for _, svc := range s.Services() {
		if has(svc.Endpoints) {
			return true
		}
		for _, sub := range svc.Subsets {
			if has(sub.Endpoints) {
				return true
			}
		}
	}
	return false
}
