package localmesh

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestParseImageSource(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ImageSource
	}{{"local", LocalImages}, {"public", PublicImages}} {
		got, err := ParseImageSource(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseImageSource(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
	for _, bad := range []string{"", "Public", "docker", " local", "local,public"} {
		_, err := ParseImageSource(bad)
		if err == nil {
			t.Errorf("ParseImageSource(%q) succeeded", bad)
			continue
		}
		for _, want := range []string{`"` + bad + `"`, `"local"`, `"public"`, PublicIstiodImage, PublicJavaBase} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ParseImageSource(%q): %v; want it to name %s", bad, err, want)
			}
		}
	}
}

func TestParsePullPolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want PullPolicy
	}{{"missing", PullMissing}, {"never", PullNever}} {
		got, err := ParsePullPolicy(tc.in)
		if err != nil || got != tc.want || got.String() != tc.in {
			t.Errorf("ParsePullPolicy(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "always", "Never", "if-not-present"} {
		_, err := ParsePullPolicy(bad)
		if err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) || !strings.Contains(err.Error(), `"never"`) {
			t.Errorf("ParsePullPolicy(%q): %v; want an error naming the value and the valid ones", bad, err)
		}
	}
}

// TestImageConfigResolve: options win over the environment, which wins over
// the defaults; bad values say which variable holds them.
func TestImageConfigResolve(t *testing.T) {
	resolve := func(opts ...ImageOption) (imageConfig, error) {
		var c config
		for _, o := range opts {
			o.applyToMesh(&c)
		}
		var e engineConfig
		for _, o := range opts {
			o.applyToEngine(&e)
		}
		errM, errE := c.images.resolve(), e.images.resolve()
		if (errM == nil) != (errE == nil) || c.images != e.images {
			t.Fatalf("Start and NewEngine resolve the same options differently: %+v %v / %+v %v", c.images, errM, e.images, errE)
		}
		return c.images, errM
	}
	t.Setenv(EnvImages, "")
	t.Setenv(EnvPull, "")
	if c, err := resolve(); err != nil || c.source != LocalImages || c.pull != PullMissing {
		t.Fatalf("defaults: %+v, %v; want local, missing", c, err)
	}
	t.Setenv(EnvImages, "public")
	t.Setenv(EnvPull, "never")
	if c, err := resolve(); err != nil || c.source != PublicImages || c.pull != PullNever {
		t.Fatalf("from the environment: %+v, %v; want public, never", c, err)
	}
	if c, err := resolve(WithImageSource(LocalImages), WithPullPolicy(PullMissing)); err != nil || c.source != LocalImages || c.pull != PullMissing {
		t.Fatalf("options over the environment: %+v, %v; want local, missing", c, err)
	}
	t.Setenv(EnvImages, "bogus")
	if _, err := resolve(); err == nil || !strings.Contains(err.Error(), `SHOAL_IMAGES="bogus"`) {
		t.Fatalf("SHOAL_IMAGES=bogus: %v; want an error naming the variable and value", err)
	}
	if _, err := resolve(WithImageSource(PublicImages)); err != nil {
		t.Fatalf("an option makes a bad SHOAL_IMAGES irrelevant, got %v", err)
	}
	t.Setenv(EnvImages, "")
	t.Setenv(EnvPull, "sometimes")
	if _, err := resolve(); err == nil || !strings.Contains(err.Error(), `SHOAL_PULL="sometimes"`) {
		t.Fatalf("SHOAL_PULL=sometimes: %v; want an error naming the variable and value", err)
	}
	t.Setenv(EnvPull, "")
	if _, err := resolve(WithImageSource(ImageSource(7))); err == nil || !strings.Contains(err.Error(), "ImageSource(7)") {
		t.Fatalf("WithImageSource(7): %v; want an error", err)
	}
	if _, err := resolve(WithPullPolicy(PullPolicy(-1))); err == nil || !strings.Contains(err.Error(), "PullPolicy(-1)") {
		t.Fatalf("WithPullPolicy(-1): %v; want an error", err)
	}
}

// TestBadImageEnvFailsFirst: Start and NewEngine refuse a bad SHOAL_IMAGES
// before they look for binaries or an engine.
func TestBadImageEnvFailsFirst(t *testing.T) {
	t.Setenv(EnvImages, "docker")
	if _, err := Start(context.Background(), WithBinDir(t.TempDir())); err == nil || !strings.Contains(err.Error(), EnvImages) {
		t.Errorf("Start: %v; want the SHOAL_IMAGES error", err)
	}
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/shoal-test.sock")
	if _, err := NewEngine(context.Background(), nil); err == nil || !strings.Contains(err.Error(), EnvImages) {
		t.Errorf("NewEngine: %v; want the SHOAL_IMAGES error", err)
	}
}

func TestJavaDockerfile(t *testing.T) {
	for _, tc := range []struct {
		base javaBase
		args []string
		want string
	}{
		{localJavaBase, nil, "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/opt/java/bin/java\", \"-jar\", \"/app.jar\"]\n"},
		{
			publicJavaBase,
			[]string{"-Xmx256m", `-Dx="y z"`},
			"FROM docker.io/library/eclipse-temurin:17-jre\nCOPY rootfs/ /\n" +
				`ENTRYPOINT ["/opt/java/openjdk/bin/java", "-Xmx256m", "-Dx=\"y z\"", "-jar", "/app.jar"]` + "\n",
		},
	} {
		if got := javaDockerfile(tc.base, tc.args); got != tc.want {
			t.Errorf("javaDockerfile(%+v, %q) =\n%s\nwant\n%s", tc.base, tc.args, got, tc.want)
		}
	}
}

func TestRequiredBinaries(t *testing.T) {
	if got := requiredBinaries(LocalImages); !slices.Contains(got, "pilot-discovery") || len(got) != 4 {
		t.Errorf("local needs %v; want the four binaries", got)
	}
	if got := requiredBinaries(PublicImages); slices.Contains(got, "pilot-discovery") || len(got) != 3 {
		t.Errorf("public needs %v; want etcd, kube-apiserver, kube-controller-manager", got)
	}
	_, err := Start(context.Background(), WithBinDir(t.TempDir()), WithImageSource(PublicImages))
	if err == nil || !strings.Contains(err.Error(), "`SHOAL_IMAGES=public go run github.com/shoalmesh/shoal/localmesh/cmd/shoal-controlplane`") {
		t.Errorf("public Start without binaries: %v; want the build command for the public path", err)
	}
}

var testPorts = map[string]int{"grpc": 31010, "secure": 31012, "http": 31080, "https": 31443, "monitoring": 31014, "ctrlz": 31876}

// TestIstiodArgs: the container runs the process's flags, except that the
// loopback-only listeners listen on the container's every interface.
func TestIstiodArgs(t *testing.T) {
	proc := istiodArgs("/run/kc", "/run/mesh.yaml", testPorts, false)
	ctr := istiodArgs("/run/kc", "/run/mesh.yaml", testPorts, true)
	want := []string{
		"discovery", "--kubeconfig=/run/kc", "--meshConfig=/run/mesh.yaml",
		"--grpcAddr=:31010", "--secureGRPCAddr=:31012",
		"--httpAddr=127.0.0.1:31080", "--httpsAddr=127.0.0.1:31443", "--monitoringAddr=127.0.0.1:31014",
		"--ctrlz_port=31876", "--domain=cluster.local", "--log_output_level=default:warn",
	}
	if !slices.Equal(proc, want) {
		t.Errorf("process flags\n%q\nwant\n%q", proc, want)
	}
	for i := range want {
		want[i] = strings.Replace(want[i], "=127.0.0.1:", "=:", 1)
	}
	if !slices.Equal(ctr, want) {
		t.Errorf("container flags\n%q\nwant\n%q", ctr, want)
	}
	if got := envList(istiodEnv("istiod-1")); !slices.Contains(got, "POD_NAME=istiod-1") || !slices.IsSorted(got) || len(got) != 5 {
		t.Errorf("istiod env %q", got)
	}
}

func TestIstiodContainerRequest(t *testing.T) {
	gw := mustAddr(t, "10.213.0.1")
	req := istiodContainerRequest(PublicIstiodImage, "istiod-0", DefaultNetwork, gw, testPorts, "kubeconfig-text")
	if req.Image != "docker.io/istio/pilot:1.31.4" {
		t.Errorf("image %q", req.Image)
	}
	if want := "shoal-istiod-0-"; !strings.HasPrefix(req.Name, want) {
		t.Errorf("name %q, want %s<pid>", req.Name, want)
	}
	if !slices.Equal(req.Cmd, istiodArgs(istiodKubeconfigPath, istiodMeshConfigPath, testPorts, true)) {
		t.Errorf("cmd %q", req.Cmd)
	}
	if req.Env["POD_NAME"] != "istiod-0" || req.Env["PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION"] != "true" {
		t.Errorf("env %v", req.Env)
	}
	if !slices.Equal(req.Networks, []string{DefaultNetwork}) {
		t.Errorf("networks %v", req.Networks)
	}
	if req.Labels[labelOwner] == "" || req.Labels[labelComponent] != "istiod-0" {
		t.Errorf("labels %v: want the owner (for CleanStale) and the component", req.Labels)
	}
	files := map[string]string{}
	for _, f := range req.Files {
		b, err := io.ReadAll(f.Reader)
		if err != nil {
			t.Fatal(err)
		}
		files[f.ContainerFilePath] = string(b)
		if f.FileMode != 0o644 {
			t.Errorf("%s has mode %o; the image's user 1337 must read it", f.ContainerFilePath, f.FileMode)
		}
	}
	if files[istiodKubeconfigPath] != "kubeconfig-text" || files[istiodMeshConfigPath] != meshConfig {
		t.Errorf("files %q", files)
	}
	if !slices.Equal(req.ExposedPorts, []string{"31010/tcp", "31012/tcp", "31080/tcp", "31443/tcp", "31014/tcp"}) {
		t.Errorf("exposed %v", req.ExposedPorts)
	}
	var hc container.HostConfig
	req.HostConfigModifier(&hc)
	loop := network.PortBinding{HostIP: mustAddr(t, "127.0.0.1"), HostPort: ""}
	for _, tc := range []struct {
		port    string
		gateway bool
	}{{"31010", true}, {"31012", true}, {"31080", false}, {"31443", false}, {"31014", false}} {
		loop.HostPort = tc.port
		want := []network.PortBinding{loop}
		if tc.gateway {
			want = append(want, network.PortBinding{HostIP: gw, HostPort: tc.port})
		}
		if got := hc.PortBindings[network.MustParsePort(tc.port+"/tcp")]; !slices.Equal(got, want) {
			t.Errorf("port %s published as %v, want %v", tc.port, got, want)
		}
	}
	if len(hc.PortBindings) != 5 {
		t.Errorf("%d ports published, want 5 (not ctrlz): %v", len(hc.PortBindings), hc.PortBindings)
	}
}

// fakeBinDir has empty files standing for the control-plane binaries: Start
// only looks for them before it checks the public image.
func fakeBinDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, b := range requiredBinaries(PublicImages) {
		if err := os.WriteFile(filepath.Join(dir, "bin", b), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPublicImagesFailFast selects the public images on a machine whose
// engine does not have them, with pulling forbidden (so that nothing leaves
// the machine), and checks that Start and BuildJavaImage fail at once with
// an error naming the image and the way back to the local build path, before
// any process starts or anything is built.
func TestPublicImagesFailFast(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the container engine; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, err := NewEngine(ctx, nil, WithImageSource(PublicImages), WithPullPolicy(PullNever))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eng.Close() }()
	for _, ref := range []string{PublicIstiodImage, PublicJavaBase} {
		if _, err := eng.api.ImageInspect(ctx, ref); err == nil {
			t.Skipf("the engine has %s: the failure cannot be shown here", ref)
		}
	}
	check := func(what string, err error, image string) {
		t.Helper()
		if !errors.Is(err, ErrImageUnavailable) {
			t.Fatalf("%s: %v; want ErrImageUnavailable", what, err)
		}
		for _, want := range []string{image, "SHOAL_IMAGES=local", "SHOAL_PULL=never"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v; want it to name %s", what, err, want)
			}
		}
	}
	start := time.Now()
	m, err := Start(ctx, WithBinDir(fakeBinDir(t)), WithImageSource(PublicImages), WithPullPolicy(PullNever))
	if m != nil {
		m.Stop()
	}
	check("Start", err, PublicIstiodImage)
	t.Logf("Start failed after %v: %v", time.Since(start).Round(time.Millisecond), err)

	jar := filepath.Join(t.TempDir(), "app.jar")
	if err := os.WriteFile(jar, []byte("not built on"), 0o600); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = eng.BuildJavaImage(ctx, JavaImage{Name: "shoal-test-public-java", Jar: jar})
	check("BuildJavaImage", err, PublicJavaBase)
	t.Logf("BuildJavaImage failed after %v", time.Since(start).Round(time.Millisecond))
	if left := eng.Containers(ctx); len(left) != 0 {
		t.Errorf("containers left: %v", left)
	}
}

// TestEnsureImagePullFails lets the engine pull an image from a registry
// address on loopback where nothing listens: the pull fails, and the error
// names the image and the local build path.
func TestEnsureImagePullFails(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the container engine; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, err := NewEngine(ctx, nil, WithImageSource(PublicImages), WithPullPolicy(PullMissing))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eng.Close() }()
	ref := "127.0.0.1:1/shoal/absent:0"
	start := time.Now()
	_, err = eng.ensureImage(ctx, ref)
	if !errors.Is(err, ErrImageUnavailable) || !strings.Contains(err.Error(), "cannot pull "+ref) || !strings.Contains(err.Error(), "SHOAL_IMAGES=local") {
		t.Fatalf("ensureImage(%s): %v; want ErrImageUnavailable naming the image and SHOAL_IMAGES=local", ref, err)
	}
	t.Logf("pull failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
