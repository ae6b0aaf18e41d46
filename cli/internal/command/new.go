package command

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"unicode"

	"github.com/spf13/cobra"
	"golang.org/x/mod/module"
)

//go:embed all:templates/app
var appTemplates embed.FS

// Versions the generated go.mod requires besides the Shoal modules: the
// same as the Shoal modules use.
const (
	protobufVersion = "v1.36.12"
	fxVersion       = "v1.24.0"
	goDirective     = "1.26.0"
)

type newFlags struct {
	module, iface, dir, shoalDir string
	fx, noGen                    bool
}

// appData is what the templates see.
type appData struct {
	Name          string // application name: demoapp
	Module        string // Go module path
	ProtoPackage  string // demoapp.v1
	Service       string // GreeterService
	ServiceFull   string // demoapp.v1.GreeterService
	ProtoDir      string // api/demoapp/v1
	ProtoFile     string // greeter.proto
	GoPackage     string // demoappv1
	TriplePackage string // demoappv1triple
	Fx            bool
}

var (
	appNameRE  = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	protoPkgRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	serviceRE  = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
)

func newNewCmd(e *env) *cobra.Command {
	f := &newFlags{}
	cmd := &cobra.Command{
		Use:   "new <name>",
		Short: "Create a new Shoal application",
		Long: `Create a new Shoal application in ./<name> (or --dir): a .proto API under api/,
its generated Go and Triple code, the service implementation with a test,
provider and consumer mains wired with the Shoal sdk (plain constructors, or
fx with --fx), shoal.yaml, a Makefile (generate, build, test, image) and a
Dockerfile for a static provider image.

The code is generated with 'shoal gen' and go.mod is tidied with 'go mod tidy',
so protoc, protoc-gen-go and protoc-gen-go-triple must be installed (see
'shoal doctor' and 'shoal tools install'); with a tool missing the project is
still written and the command exits 69 saying what to install.

The Shoal modules are not released yet: give a Shoal checkout with
--shoal-dir (or SHOAL_DIR) and go.mod points at its modules with replace
lines. A released shoal requires the Shoal versions it was built with.`,
		Example: `  shoal new demoapp --shoal-dir ~/src/shoal
  shoal new orders --module example.com/shop/orders --interface shop.orders.v1.OrderService --fx`,
		Args: exactArgs(1, "the application's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNew(cmd.Context(), e, args[0], f)
		},
	}
	cmd.Flags().StringVar(&f.module, "module", "", "Go module path (default: the name)")
	cmd.Flags().StringVar(&f.iface, "interface", "", "the service's full proto name, package.Service (default: <name>.v1.GreeterService)")
	cmd.Flags().StringVar(&f.dir, "dir", "", "directory to create (default: ./<name>)")
	cmd.Flags().BoolVar(&f.fx, "fx", false, "wire the mains with go.uber.org/fx (sdk/shoalfx) instead of plain constructors")
	cmd.Flags().BoolVar(&f.noGen, "no-gen", false, "only write the files: no code generation, no go mod tidy")
	addShoalDirFlag(cmd, &f.shoalDir)
	return cmd
}

// newAppData checks the names and derives the rest.
func newAppData(name string, f *newFlags) (*appData, error) {
	if !appNameRE.MatchString(name) {
		return nil, usageErrorf("bad name %q: use lower-case letters, digits and dashes, starting with a letter (it names the binaries and the image)", name)
	}
	d := &appData{Name: name, Module: f.module, Fx: f.fx}
	if d.Module == "" {
		d.Module = name
	}
	if err := module.CheckImportPath(d.Module); err != nil {
		return nil, usageErrorf("bad --module %q: %v", d.Module, err)
	}
	iface := f.iface
	if iface == "" {
		iface = strings.ReplaceAll(name, "-", "_") + ".v1.GreeterService"
	}
	i := strings.LastIndexByte(iface, '.')
	if i <= 0 {
		return nil, usageErrorf("bad --interface %q: want package.Service, e.g. shop.orders.v1.OrderService", iface)
	}
	d.ProtoPackage, d.Service = iface[:i], iface[i+1:]
	segs := strings.Split(d.ProtoPackage, ".")
	for _, s := range segs {
		if !protoPkgRE.MatchString(s) {
			return nil, usageErrorf("bad --interface %q: package part %q must be lower-case letters, digits and underscores", iface, s)
		}
	}
	if !serviceRE.MatchString(d.Service) {
		return nil, usageErrorf("bad --interface %q: the service name %q must be UpperCamelCase", iface, d.Service)
	}
	d.ServiceFull = iface
	d.ProtoDir = "api/" + strings.Join(segs, "/")
	last := segs[len(segs)-1]
	if len(segs) > 1 && regexp.MustCompile(`^v[0-9]+`).MatchString(last) {
		last = segs[len(segs)-2] + last
	}
	d.GoPackage = strings.ReplaceAll(last, "_", "")
	d.TriplePackage = d.GoPackage + "triple"
	base := strings.TrimSuffix(d.Service, "Service")
	if base == "" {
		base = d.Service
	}
	d.ProtoFile = snake(base) + ".proto"
	return d, nil
}

// snake turns UpperCamel into snake_case, keeping acronyms together:
// HTTPGateway is http_gateway.
func snake(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && !unicode.IsUpper(rs[i-1])
			acronymEnd := i > 0 && i+1 < len(rs) && unicode.IsUpper(rs[i-1]) && unicode.IsLower(rs[i+1])
			if prevLower || acronymEnd {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func runNew(ctx context.Context, e *env, name string, f *newFlags) error {
	d, err := newAppData(name, f)
	if err != nil {
		return err
	}
	gomod, err := appGoMod(d, f.shoalDir)
	if err != nil {
		return err
	}
	dir := f.dir
	if dir == "" {
		dir = name
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return usageErrorf("%s already exists and is not empty: choose another name or --dir", dir)
	}
	if err := writeApp(dir, d); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o644); err != nil { //nolint:gosec // a source file, readable like any checkout
		return err
	}
	meshFiles, err := appMeshFiles(d)
	if err != nil {
		return err
	}
	for rel, body := range meshFiles {
		if err := writeAppFile(dir, rel, body); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "created %s in %s (%s)\n", d.Name, dir, d.ServiceFull)
	if f.noGen {
		fmt.Fprintf(e.stdout, "next: cd %s && shoal gen && go mod tidy && make test\n", dir)
		return nil
	}
	if err := runGen(ctx, e, dir, &genFlags{}); err != nil {
		return fmt.Errorf("%w\nthe project is written; once that is fixed: cd %s && shoal gen && go mod tidy", err, dir)
	}
	t := newToolFinder(ctx)
	goCmd, err := t.find("go")
	if err != nil {
		return err
	}
	if err := runTool(ctx, e, t, dir, goCmd, "mod", "tidy"); err != nil {
		return fmt.Errorf("%w\nthe project is written; once that is fixed: cd %s && go mod tidy", err, dir)
	}
	fmt.Fprintf(e.stdout, "next: cd %s && make test && make run-provider\n", dir)
	return nil
}

// appGoMod writes go.mod: the Shoal modules from a local checkout with
// replace lines, or at the versions this shoal was built with.
func appGoMod(d *appData, shoalDir string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "module %s\n\ngo %s\n\nrequire (\n", d.Module, goDirective)
	mods := []string{"observability", "registry-istio", "router-mesh", "sdk", "triple"}
	var replaces []string
	for _, m := range mods {
		p := "github.com/shoalmesh/shoal/" + m
		v := "v0.0.0-00010101000000-000000000000"
		if shoalDir != "" {
			abs, err := checkShoalDir(shoalDir)
			if err != nil {
				return nil, err
			}
			replaces = append(replaces, fmt.Sprintf("replace %s => %s\n", p, filepath.Join(abs, m)))
		} else if v = releasedVersion(m); v == "" {
			return nil, usageErrorf("this shoal is a development build and the Shoal modules are not released: give a Shoal checkout with --shoal-dir or SHOAL_DIR")
		}
		fmt.Fprintf(&b, "\t%s %s\n", p, v)
	}
	if d.Fx {
		fmt.Fprintf(&b, "\tgo.uber.org/fx %s\n", fxVersion)
	}
	fmt.Fprintf(&b, "\tgoogle.golang.org/protobuf %s\n)\n", protobufVersion)
	if len(replaces) > 0 {
		b.WriteString("\n// A local Shoal checkout, until the Shoal modules are released.\n")
		for _, r := range replaces {
			b.WriteString(r)
		}
	}
	return b.Bytes(), nil
}

// writeApp renders the templates into dir. A name ending in .plain.tmpl is
// used only without --fx, one ending in .fx.tmpl only with it; a name
// without .tmpl is copied unchanged.
func writeApp(dir string, d *appData) error {
	const root = "templates/app"
	return fs.WalkDir(appTemplates, root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, root+"/")
		switch {
		case strings.HasSuffix(rel, ".fx.tmpl"):
			if !d.Fx {
				return nil
			}
			rel = strings.TrimSuffix(rel, ".fx.tmpl")
		case strings.HasSuffix(rel, ".plain.tmpl"):
			if d.Fx {
				return nil
			}
			rel = strings.TrimSuffix(rel, ".plain.tmpl")
		case strings.HasSuffix(rel, ".tmpl"):
			rel = strings.TrimSuffix(rel, ".tmpl")
		default:
			// Not a template of shoal's (the chart's Helm templates):
			// copied as it is.
			return copyTemplateFile(dir, p, rel)
		}
		switch rel {
		case "api/service.proto":
			rel = path.Join(d.ProtoDir, d.ProtoFile)
		case "gitignore":
			rel = ".gitignore"
		}
		src, err := appTemplates.ReadFile(p)
		if err != nil {
			return err
		}
		tmpl, err := template.New(rel).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if err := tmpl.Execute(&out, d); err != nil {
			return err
		}
		body := out.Bytes()
		if strings.HasSuffix(rel, ".go") {
			if body, err = format.Source(body); err != nil {
				return fmt.Errorf("template %s renders invalid Go: %w", p, err)
			}
		}
		return writeAppFile(dir, rel, body)
	})
}

// copyTemplateFile copies the embedded file p to dir/rel unchanged.
func copyTemplateFile(dir, p, rel string) error {
	body, err := appTemplates.ReadFile(p)
	if err != nil {
		return err
	}
	return writeAppFile(dir, rel, body)
}

// writeAppFile writes one file of the new application.
func writeAppFile(dir, rel string, body []byte) error {
	dst := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil { //nolint:gosec // a source tree, readable like any checkout
		return err
	}
	return os.WriteFile(dst, body, 0o644) //nolint:gosec // a source file, readable like any checkout
}

// releasedVersion is the version of the Shoal module in directory m that
// this released shoal goes with: the one compiled in, or for observability
// and router-mesh, which shoal does not import, the sdk's (a release tags
// every module in one commit, at the versions of versions.yaml, all one
// version so far).
func releasedVersion(m string) string {
	if m == "observability" || m == "router-mesh" {
		m = "sdk"
	}
	return shoalModuleVersion("github.com/shoalmesh/shoal/" + m)
}
