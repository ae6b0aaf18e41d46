package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/registry-istio/mapping"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// helmBinary is the pinned helm (tools/helm, built into .cache/bin by
// scripts/tools.sh helm, which make deps runs), else one in PATH.
func helmBinary(t *testing.T) string {
	t.Helper()
	pinned, err := filepath.Abs(filepath.Join("..", "..", "..", ".cache", "bin", "helm"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(pinned); err == nil && fi.Mode()&0o111 != 0 {
		return pinned
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if testing.Short() {
		t.Skip("helm is not built: scripts/tools.sh helm (make deps)")
	}
	t.Fatalf("helm is not built at %s nor in PATH: run scripts/tools.sh helm (make deps)", pinned)
	return ""
}

func runHelm(t *testing.T, helm string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), nil
}

// newTestApp writes the files 'shoal new --no-gen' writes (the chart among
// them) into a temporary directory.
func newTestApp(t *testing.T, name string) string {
	t.Helper()
	d, err := newAppData(name, &newFlags{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := writeApp(dir, d); err != nil {
		t.Fatal(err)
	}
	files, err := appMeshFiles(d)
	if err != nil {
		t.Fatal(err)
	}
	for rel, body := range files {
		if err := writeAppFile(dir, rel, body); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// objects decodes a rendered YAML stream.
func objects(t *testing.T, rendered string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(rendered))
	var out []map[string]any
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("rendered chart: %v\n%s", err, rendered)
		}
		if obj != nil {
			out = append(out, obj)
		}
	}
}

func kindsAndNames(objs []map[string]any) []string {
	var out []string
	for _, o := range objs {
		meta, _ := o["metadata"].(map[string]any)
		out = append(out, fmt.Sprintf("%v/%v", o["kind"], meta["name"]))
	}
	slices.Sort(out)
	return out
}

func findObject(t *testing.T, objs []map[string]any, kind string) map[string]any {
	t.Helper()
	for _, o := range objs {
		if o["kind"] == kind {
			return o
		}
	}
	t.Fatalf("no %s rendered", kind)
	return nil
}

// TestChart renders the chart 'shoal new' writes with the pinned helm in
// three configurations (the first version, a second version beside it,
// dynamic registration with RBAC), lints it, checks what a mesh needs in
// the Deployment and that the ServiceEntry is registry-istio's
// mapping.Scheme.Manifest, and (without -short) applies every rendered
// object to the real kube-apiserver of localmesh with Istio's CRDs.
func TestChart(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		goleak.VerifyNone(t, ignore,
			goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
			goleak.IgnoreAnyFunction("k8s.io/client-go/util/workqueue.(*Type).updateUnfinishedWorkLoop"))
	})
	helm := helmBinary(t)
	dir := newTestApp(t, "demoapp")
	chart := filepath.Join(dir, "deploy", "chart")
	const ns = "chart-test"

	configs := []struct {
		name string
		set  string
		want []string
	}{
		{"first version", "", []string{"ConfigMap/demoapp-shoal", "Deployment/demoapp-v1", "Service/demoapp", "ServiceAccount/demoapp", "ServiceEntry/demoapp-shoal"}},
		{"second version", "version=v2,shared=false", []string{"Deployment/demoapp-v2"}},
		{"dynamic registration", "rbac.create=true,registry.publish=true", []string{
			"ConfigMap/demoapp-shoal", "Deployment/demoapp-v1", "Role/demoapp-shoal-registration", "RoleBinding/demoapp-shoal-registration",
			"Service/demoapp", "ServiceAccount/demoapp", "ServiceEntry/demoapp-shoal",
		}},
	}
	rendered := make([]string, len(configs))
	for i, c := range configs {
		args := []string{"lint", "--strict", chart}
		tmpl := []string{"template", "demoapp", chart, "--namespace", ns}
		if c.set != "" {
			args = append(args, "--set", c.set)
			tmpl = append(tmpl, "--set", c.set)
		}
		if _, err := runHelm(t, helm, args...); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		out, err := runHelm(t, helm, tmpl...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := kindsAndNames(objects(t, out)); !slices.Equal(got, c.want) {
			t.Errorf("%s: rendered %v, want %v", c.name, got, c.want)
		}
		rendered[i] = out
	}

	// Publishing without the rights for it is refused, saying what to set.
	if _, err := runHelm(t, helm, "template", "demoapp", chart, "--set", "registry.publish=true"); err == nil || !strings.Contains(err.Error(), "set rbac.create: true too") {
		t.Errorf("publish without rbac: %v, want the chart to fail saying to set rbac.create", err)
	}

	objs := objects(t, rendered[0])
	checkDeployment(t, findObject(t, objs, "Deployment"))

	// The ServiceEntry is registry-istio's, as the demo applies it.
	want, err := mapping.Scheme{}.Manifest(mapping.Application{
		Name: "demoapp", Interfaces: []registry.Key{{Interface: "demoapp.v1.GreeterService"}}, TargetPort: 50051,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wantSE map[string]any
	if err := json.Unmarshal(want, &wantSE); err != nil {
		t.Fatal(err)
	}
	gotSE, err := json.Marshal(findObject(t, objs, "ServiceEntry"))
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(wantSE)
	if !bytes.Equal(gotSE, wantJSON) {
		t.Errorf("rendered ServiceEntry\n%s\nis not mapping.Scheme.Manifest's\n%s", gotSE, wantJSON)
	}

	if testing.Short() {
		t.Skip("applying to the real kube-apiserver starts the control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m, err := localmesh.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if err := m.Apply(ctx, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n"); err != nil {
		t.Fatal(err)
	}
	for i, c := range configs {
		if err := m.Apply(ctx, rendered[i]); err != nil {
			t.Errorf("%s: the API server refused the chart: %v", c.name, err)
		}
	}
	// A field the schemas do not know is refused: the apply validates.
	bad := strings.Replace(rendered[0], "location: MESH_INTERNAL", "location: MESH_INTERNAL\n  notAField: 1", 1)
	bad = strings.Replace(bad, `"location": "MESH_INTERNAL",`, `"location": "MESH_INTERNAL", "notAField": 1,`, 1)
	if bad == rendered[0] {
		t.Fatal("the ServiceEntry's location was not found in the rendered chart")
	}
	if err := m.Apply(ctx, bad); err == nil || !strings.Contains(err.Error(), "notAField") {
		t.Errorf("a ServiceEntry with an unknown field: %v, want the API server to refuse it", err)
	}
}

// checkDeployment checks what the mesh needs of the Pod template.
func checkDeployment(t *testing.T, dep map[string]any) {
	t.Helper()
	b, err := json.Marshal(dep)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Spec struct {
			Template struct {
				Metadata struct {
					Labels      map[string]string `json:"labels"`
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
				Spec struct {
					ServiceAccountName string `json:"serviceAccountName"`
					Containers         []struct {
						Ports []struct {
							Name          string `json:"name"`
							ContainerPort int    `json:"containerPort"`
						} `json:"ports"`
						Env []struct {
							Name      string `json:"name"`
							Value     string `json:"value"`
							ValueFrom struct {
								FieldRef struct {
									FieldPath string `json:"fieldPath"`
								} `json:"fieldRef"`
							} `json:"valueFrom"`
						} `json:"env"`
						ReadinessProbe struct {
							GRPC struct {
								Port int `json:"port"`
							} `json:"grpc"`
						} `json:"readinessProbe"`
						VolumeMounts []struct {
							Name      string `json:"name"`
							MountPath string `json:"mountPath"`
						} `json:"volumeMounts"`
					} `json:"containers"`
					Volumes []struct {
						Name      string `json:"name"`
						ConfigMap struct {
							Name string `json:"name"`
						} `json:"configMap"`
						Projected struct {
							Sources []struct {
								ServiceAccountToken struct {
									Audience string `json:"audience"`
									Path     string `json:"path"`
								} `json:"serviceAccountToken"`
							} `json:"sources"`
						} `json:"projected"`
					} `json:"volumes"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template
	if pod.Metadata.Labels["app"] != "demoapp" || pod.Metadata.Labels["version"] != "v1" {
		t.Errorf("Pod labels %v, want app=demoapp version=v1", pod.Metadata.Labels)
	}
	if a := pod.Metadata.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "15020" || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("Pod annotations %v, want Prometheus scraping of 15020/metrics", a)
	}
	if pod.Spec.ServiceAccountName != "demoapp" || len(pod.Spec.Containers) != 1 {
		t.Fatalf("Pod spec: service account %q, %d containers", pod.Spec.ServiceAccountName, len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc-tri"] != 50051 || ports["http-admin"] != 15020 {
		t.Errorf("ports %v, want grpc-tri 50051 and http-admin 15020", ports)
	}
	if c.ReadinessProbe.GRPC.Port != 50051 {
		t.Errorf("readiness probe %+v, want gRPC health on 50051", c.ReadinessProbe)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value + e.ValueFrom.FieldRef.FieldPath
	}
	for k, v := range map[string]string{
		"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "INSTANCE_IP": "status.podIP",
		"SERVICE_ACCOUNT": "spec.serviceAccountName", "ISTIO_METAJSON_LABELS": `{"app":"demoapp","version":"v1"}`,
		"SHOAL_XDS_ADDRESS": "istiod.istio-system.svc:15012", "SHOAL_ADMIN_ADDRESS": "0.0.0.0:15020",
		"ISTIO_META_WORKLOAD_NAME": "demoapp-v1",
	} {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["istio-token"] != "/var/run/secrets/tokens" || mounts["istiod-ca-cert"] != "/var/run/secrets/istio" {
		t.Errorf("mounts %v, want the istio-ca token in /var/run/secrets/tokens and the root certificate in /var/run/secrets/istio (registry-istio/bootstrap's defaults)", mounts)
	}
	var token, root bool
	for _, v := range pod.Spec.Volumes {
		for _, s := range v.Projected.Sources {
			token = token || (v.Name == "istio-token" && s.ServiceAccountToken.Audience == "istio-ca" && s.ServiceAccountToken.Path == "istio-token")
		}
		root = root || (v.Name == "istiod-ca-cert" && v.ConfigMap.Name == "istio-ca-root-cert")
	}
	if !token || !root {
		t.Errorf("volumes %+v: projected istio-ca token %v, istio-ca-root-cert ConfigMap %v", pod.Spec.Volumes, token, root)
	}
}
