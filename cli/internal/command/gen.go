package command

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	// The well-known types, bundled for protoc installs that lack them.
	_ "google.golang.org/protobuf/types/known/anypb"
	_ "google.golang.org/protobuf/types/known/apipb"
	_ "google.golang.org/protobuf/types/known/durationpb"
	_ "google.golang.org/protobuf/types/known/emptypb"
	_ "google.golang.org/protobuf/types/known/fieldmaskpb"
	_ "google.golang.org/protobuf/types/known/sourcecontextpb"
	_ "google.golang.org/protobuf/types/known/structpb"
	_ "google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/typepb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
	_ "google.golang.org/protobuf/types/pluginpb"
)

type genFlags struct {
	importPaths []string
	out         string
}

func newGenCmd(e *env) *cobra.Command {
	f := &genFlags{}
	cmd := &cobra.Command{
		Use:   "gen [dir]",
		Short: "Generate Go and Triple code from the .proto files of a project",
		Long: `Generate Go messages (protoc-gen-go) and Triple clients and handlers
(protoc-gen-go-triple) from the .proto files under dir (default: the current
directory), next to each .proto file.

With a buf.gen.yaml in dir, 'buf generate' runs there and its configuration
decides. Otherwise protoc runs with dir as the import root. The well-known
types (google/protobuf/*.proto) come from protoc's include directory when it
has one (Debian: apt-get install libprotobuf-dev), else from the copies
compiled into shoal.

Plugins are looked up in PATH and then in the go install directory (GOBIN or
GOPATH/bin), where 'shoal tools install' puts them. Exit code 69 means a
program is missing; the message says how to get it.`,
		Example: `  shoal gen
  shoal gen ./api -I third_party`,
		Args: rangeArgs(0, 1, "an optional project directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runGen(cmd.Context(), e, dir, f)
		},
	}
	cmd.Flags().StringSliceVarP(&f.importPaths, "import-path", "I", nil, "more import directories for protoc")
	cmd.Flags().StringVar(&f.out, "out", "", "output directory for protoc (default: dir)")
	return cmd
}

func runGen(ctx context.Context, e *env, dir string, f *genFlags) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usageErrorf("%s is not a directory", dir)
	}
	t := newToolFinder(ctx)
	for _, p := range []string{"protoc-gen-go", "protoc-gen-go-triple"} {
		if _, err := t.find(p); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "buf.gen.yaml")); err == nil {
		buf, err := t.find("buf")
		if err != nil {
			return err
		}
		if err := runTool(ctx, e, t, dir, buf, "generate"); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "generated with buf (buf.gen.yaml in %s)\n", dir)
		return nil
	}
	files, err := protoFiles(dir)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usageErrorf("no .proto files under %s", dir)
	}
	protoc, err := t.find("protoc")
	if err != nil {
		return err
	}
	out := f.out
	if out == "" {
		out = "."
	} else {
		if out, err = filepath.Abs(out); err != nil {
			return err
		}
		if err := os.MkdirAll(out, 0o755); err != nil { //nolint:gosec // generated source, readable like any checkout
			return err
		}
	}
	args := []string{"-I", "."}
	for _, p := range f.importPaths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		args = append(args, "-I", abs)
	}
	wkt := "bundled with shoal"
	if inc := wktInclude(protoc); inc != "" {
		args = append(args, "-I", inc)
		wkt = inc
	} else {
		set, cleanup, err := writeWKTSet()
		if err != nil {
			return err
		}
		defer cleanup()
		args = append(args, "--descriptor_set_in="+set)
	}
	args = append(args,
		"--go_out="+out, "--go_opt=paths=source_relative",
		"--go-triple_out="+out, "--go-triple_opt=paths=source_relative")
	args = append(args, files...)
	if err := runTool(ctx, e, t, dir, protoc, args...); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "generated Go and Triple code for %s with protoc (well-known types: %s)\n", strings.Join(files, ", "), wkt)
	return nil
}

// protoFiles lists the .proto files under dir, relative to it, skipping
// hidden, vendor, testdata and node_modules directories.
func protoFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if p != dir && (strings.HasPrefix(n, ".") || n == "vendor" || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".proto") {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// wktInclude returns an include directory that has the well-known types:
// protoc's own (../include beside the binary) or the system's.
func wktInclude(protoc string) string {
	cands := []string{filepath.Join(filepath.Dir(filepath.Dir(protoc)), "include"), "/usr/include", "/usr/local/include"}
	if real, err := filepath.EvalSymlinks(protoc); err == nil {
		cands = append([]string{filepath.Join(filepath.Dir(filepath.Dir(real)), "include")}, cands...)
	}
	for _, c := range cands {
		if _, err := os.Stat(filepath.Join(c, "google", "protobuf", "timestamp.proto")); err == nil {
			return c
		}
	}
	return ""
}

// writeWKTSet writes the well-known types compiled into shoal as a
// FileDescriptorSet, for protoc's --descriptor_set_in: protoc takes an
// import it cannot find on its include path from there.
func writeWKTSet() (string, func(), error) {
	set := &descriptorpb.FileDescriptorSet{}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if strings.HasPrefix(fd.Path(), "google/protobuf/") {
			set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
		}
		return true
	})
	sort.Slice(set.File, func(i, j int) bool { return set.File[i].GetName() < set.File[j].GetName() })
	b, err := proto.Marshal(set)
	if err != nil {
		return "", nil, err
	}
	fh, err := os.CreateTemp("", "shoal-wkt-*.pb")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.Remove(fh.Name()) }
	if _, err := fh.Write(b); err != nil {
		_ = fh.Close()
		cleanup()
		return "", nil, err
	}
	if err := fh.Close(); err != nil {
		cleanup()
		return "", nil, err
	}
	return fh.Name(), cleanup, nil
}
