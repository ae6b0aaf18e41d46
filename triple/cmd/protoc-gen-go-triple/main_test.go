package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/shoalmesh/shoal/triple/internal/testpb"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden builds this plugin, runs it under protoc on
// internal/testpb/echo.proto and compares the output with the committed
// internal/testpb/testpbtriple/echo.triple.go; -update rewrites that file.
func TestGolden(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		if testing.Short() {
			t.Skip("protoc not installed (apt-get install protobuf-compiler, or make deps)")
		}
		t.Fatal("protoc not installed: apt-get install protobuf-compiler, or make deps")
	}
	dir := t.TempDir()
	plugin := filepath.Join(dir, "protoc-gen-go-triple")
	if out, err := exec.Command("go", "build", "-o", plugin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	src := filepath.Join("..", "..", "internal", "testpb")
	cmd := exec.Command(protoc, "-I"+src, "--plugin=protoc-gen-go-triple="+plugin,
		"--go-triple_out="+dir, "--go-triple_opt=paths=source_relative", "echo.proto")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "testpbtriple", "echo.triple.go"))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join(src, "testpbtriple", "echo.triple.go")
	if *update {
		if err := os.WriteFile(golden, got, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("generated code differs from %s; run make generate (or go test -update here) and commit", golden)
	}
}

// TestGoldenBuf generates the same code with buf instead of protoc: buf
// compiles the .proto itself and runs the plugin as a local plugin (no
// remote plugin, no registry), and the output must match the same golden
// file byte for byte.
func TestGoldenBuf(t *testing.T) {
	buf, err := exec.LookPath("buf")
	if err != nil {
		if testing.Short() {
			t.Skip("buf not installed (scripts/tools.sh buf, or make deps)")
		}
		t.Fatal("buf not installed: scripts/tools.sh buf, or make deps")
	}
	dir := t.TempDir()
	plugin := filepath.Join(dir, "protoc-gen-go-triple")
	if out, err := exec.Command("go", "build", "-o", plugin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	src, err := filepath.Abs(filepath.Join("..", "..", "internal", "testpb"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	template := `{"version":"v2","plugins":[{"local":` + strconv.Quote(plugin) +
		`,"out":` + strconv.Quote(out) + `,"opt":["paths=source_relative"]}]}`
	cmd := exec.Command(buf, "generate", src, "--path", filepath.Join(src, "echo.proto"), "--template", template)
	// A local plugin needs no network; a proxy that refuses makes sure buf
	// never reaches a registry from a test.
	cmd.Env = append(os.Environ(), "BUF_CACHE_DIR="+filepath.Join(dir, "cache"),
		"HTTPS_PROXY=http://127.0.0.1:1", "HTTP_PROXY=http://127.0.0.1:1", "NO_PROXY=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("buf generate: %v\n%s", err, b)
	}
	got, err := os.ReadFile(filepath.Join(out, "testpbtriple", "echo.triple.go"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(src, "testpbtriple", "echo.triple.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("buf's output differs from protoc's golden file:\n%s", got)
	}
}

func TestKinds(t *testing.T) {
	p, err := protogen.Options{}.New(&pluginpb.CodeGeneratorRequest{
		FileToGenerate: []string{"echo.proto"},
		ProtoFile:      []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(testpb.File_echo_proto)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Echo": "unary", "EchoServer": "server", "EchoClient": "client", "EchoBidi": "bidi"}
	for _, m := range p.Files[0].Services[0].Methods {
		if got := kind(m); got != want[m.GoName] {
			t.Errorf("kind(%s) = %s, want %s", m.GoName, got, want[m.GoName])
		}
	}
}
