package localmesh_test

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

	"github.com/shoalmesh/shoal/localmesh"
)

// TestJavaImage builds a jar with the JDK, an image of it on a jlink runtime
// FROM scratch, and runs it: the JVM must start with only what the image
// holds and see its arguments.
func TestJavaImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Java runtime image and runs a container; run without -short (make test)")
	}
	for _, tool := range []string{"javac", "jar", "jlink"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: %v (make deps installs a JDK)", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	src := `public class Hello {
  public static void main(String[] args) throws Exception {
    java.beans.Introspector.getBeanInfo(Hello.class); // java.desktop, as Dubbo uses
    System.out.println("hello from " + System.getProperty("java.version") + " " + String.join(",", args));
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
	eng, err := localmesh.NewEngine(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eng.Close() }()
	start := time.Now()
	image, err := eng.BuildJavaImage(ctx, localmesh.JavaImage{Name: "shoal-test-hello", Jar: filepath.Join(dir, "hello.jar")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s in %v", image, time.Since(start).Round(time.Millisecond))
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:      image,
			Cmd:        []string{"a", "b"},
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
	if !strings.Contains(string(b), "hello from ") || !strings.Contains(string(b), " a,b") {
		t.Fatalf("container output %q, want the JVM's greeting with its arguments", b)
	}
}
