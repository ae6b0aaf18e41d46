package localmesh

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// TestJavaImage builds a jar with the JDK and, for each image source, an
// image of it, and runs it: the JVM must start with only what the image
// holds and see its arguments. LocalImages builds on a jlink runtime FROM
// scratch; PublicImages builds FROM eclipse-temurin, which this machine
// cannot pull, so its case builds on a stand-in laid out as that image is
// (see buildStandInTemurin): the Dockerfile and entrypoint of the public
// path are what run.
func TestJavaImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Java runtime images and runs containers; run without -short (make test)")
	}
	for _, tool := range []string{"javac", "jar", "jlink"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: %v (make deps installs a JDK)", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	jar := helloJar(ctx, t)
	for _, src := range []ImageSource{LocalImages, PublicImages} {
		t.Run(src.String(), func(t *testing.T) {
			eng, err := NewEngine(ctx, nil, WithImageSource(src), WithPullPolicy(PullNever))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = eng.Close() }()
			if src == PublicImages {
				eng.publicJava.from = buildStandInTemurin(ctx, t, eng)
			}
			start := time.Now()
			image, err := eng.BuildJavaImage(ctx, JavaImage{Name: "shoal-test-hello", Jar: jar, JVMArgs: []string{"-Dgreeting=hello"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("image %s in %v", image, time.Since(start).Round(time.Millisecond))
			if out := runToExit(ctx, t, image, "a", "b"); !strings.Contains(out, "hello from ") || !strings.Contains(out, " a,b") {
				t.Fatalf("container output %q, want the JVM's greeting with its arguments", out)
			}
		})
	}
}

// helloJar compiles a main class that touches java.desktop (as Dubbo does)
// and prints a system property, the Java version and its arguments.
func helloJar(ctx context.Context, t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := `public class Hello {
  public static void main(String[] args) throws Exception {
    java.beans.Introspector.getBeanInfo(Hello.class); // java.desktop, as Dubbo uses
    System.out.println(System.getProperty("greeting") + " from " + System.getProperty("java.version") + " " + String.join(",", args));
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "Hello.java"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{
		{"javac", "-d", dir, filepath.Join(dir, "Hello.java")},
		{"jar", "--create", "--file", filepath.Join(dir, "hello.jar"), "--main-class", "Hello", "-C", dir, "Hello.class"},
	} {
		if out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	return filepath.Join(dir, "hello.jar")
}

// buildStandInTemurin builds an image laid out as eclipse-temurin's JRE is
// (the runtime in /opt/java/openjdk), from the machine's jlink runtime and
// the C libraries it needs, FROM scratch.
func buildStandInTemurin(ctx context.Context, t *testing.T, e *Engine) string {
	t.Helper()
	runtime, err := jlinkRuntime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	rootfs := filepath.Join(tmp, "rootfs")
	if err := copyTree(runtime, filepath.Join(rootfs, "opt", "java", "openjdk")); err != nil {
		t.Fatal(err)
	}
	libs, err := sharedLibraries(ctx, runtime)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if err := copyFile(l, filepath.Join(rootfs, l)); err != nil {
			t.Fatal(err)
		}
	}
	tag, err := fileHash(filepath.Join(runtime, "release"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := e.buildImage(ctx, tmp, "shoal-test-temurin", tag, "FROM scratch\nCOPY rootfs/ /\n")
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// runToExit runs image with args until it exits and returns its output.
func runToExit(ctx context.Context, t *testing.T, image string, args ...string) string {
	t.Helper()
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:      image,
			Cmd:        args,
			WaitingFor: wait.ForExit().WithExitTimeout(time.Minute),
		},
		Started: true,
	})
	if ctr != nil {
		defer func() { _ = ctr.Terminate(context.WithoutCancel(ctx)) }()
	}
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ctr.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	b, _ := io.ReadAll(rc)
	return string(b)
}
