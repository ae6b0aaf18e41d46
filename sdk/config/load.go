package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// FileName is the file Load reads from the working directory when no other
// file is named.
const FileName = "shoal.yaml"

// Option is a code-level setting for Load.
type Option interface{ apply(*loader) }

type loader struct {
	file     string
	fileSet  bool
	data     []byte
	dataName string
	env      func(string) (string, bool)
	mods     []func(*Config)
	exe      string
}

type optionFunc func(*loader)

func (f optionFunc) apply(l *loader) { f(l) }

// WithFile reads the configuration from path; it must exist.
func WithFile(path string) Option {
	return optionFunc(func(l *loader) { l.file, l.fileSet = path, true })
}

// WithYAML reads the configuration from data, reported under name in
// errors (tests, embedded configuration).
func WithYAML(name string, data []byte) Option {
	return optionFunc(func(l *loader) { l.data, l.dataName = data, name })
}

// WithoutFile ignores $SHOAL_CONFIG and ./shoal.yaml: defaults, code and
// environment only.
func WithoutFile() Option {
	return optionFunc(func(l *loader) { l.file, l.fileSet = "", true })
}

// WithEnv replaces os.LookupEnv as the source of SHOAL_* variables
// (tests; or a func that always says false, to ignore the environment).
func WithEnv(lookup func(string) (string, bool)) Option {
	return optionFunc(func(l *loader) { l.env = lookup })
}

// WithApplicationName sets application.name.
func WithApplicationName(name string) Option {
	return Modify(func(c *Config) { c.Application.Name = name })
}

// WithRegistry adds a registry.
func WithRegistry(r Registry) Option {
	return Modify(func(c *Config) { c.Registries = append(c.Registries, r) })
}

// WithProtocol adds a protocol (a server).
func WithProtocol(p Protocol) Option {
	return Modify(func(c *Config) { c.Protocols = append(c.Protocols, p) })
}

// WithService adds a provided service.
func WithService(s Service) Option {
	return Modify(func(c *Config) { c.Services = append(c.Services, s) })
}

// WithReference adds a reference.
func WithReference(r Reference) Option {
	return Modify(func(c *Config) { c.References = append(c.References, r) })
}

// Modify runs f on the configuration after the file was read, before the
// environment and the defaults are applied.
func Modify(f func(*Config)) Option {
	return optionFunc(func(l *loader) { l.mods = append(l.mods, f) })
}

// Load builds and validates the configuration; see the package
// documentation for the layers.
func Load(opts ...Option) (*Config, error) {
	l := &loader{env: os.LookupEnv, exe: os.Args[0]}
	for _, o := range opts {
		o.apply(l)
	}
	cfg := &Config{}
	name := FileName
	data, source, err := l.read()
	if err != nil {
		return nil, err
	}
	if source != "" {
		name = source
		if err := decode(name, data, cfg); err != nil {
			return nil, err
		}
	}
	for _, m := range l.mods {
		m(cfg)
	}
	defaultLists(cfg) // before the environment, which can then change them
	if err := applyEnv(cfg, l.env); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	applyDefaults(cfg, l.exe)
	if err := cfg.validate(name); err != nil {
		return nil, err
	}
	return cfg, nil
}

// read returns the file's bytes and its name, or "" when there is none.
func (l *loader) read() ([]byte, string, error) {
	if l.data != nil {
		return l.data, l.dataName, nil
	}
	path, must := l.file, l.fileSet
	if !l.fileSet {
		if p, ok := l.env("SHOAL_CONFIG"); ok && p != "" {
			path, must = p, true
		} else {
			path = FileName
		}
	}
	if path == "" {
		return nil, "", nil
	}
	data, err := os.ReadFile(path) //nolint:gosec // the path names the application's own configuration
	if errors.Is(err, fs.ErrNotExist) && !must {
		return nil, "", nil // shoal.yaml is optional
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: cannot read the configuration: %w; fix the path (WithFile or SHOAL_CONFIG)", path, err)
	}
	return data, path, nil
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type config\.(\w+)`)

func decode(name string, data []byte, cfg *Config) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		msg := err.Error()
		if m := unknownField.FindStringSubmatch(msg); m != nil {
			return fmt.Errorf("%s: line %s: unknown field %q in %s; check the spelling, the fields are: %s",
				name, m[1], m[2], strings.ToLower(m[3]), fieldsOf(m[3]))
		}
		return fmt.Errorf("%s: not valid YAML for shoal.yaml: %s", name, strings.TrimPrefix(msg, "yaml: "))
	}
	return nil
}

// fieldsOf lists the yaml names of a config type's fields.
func fieldsOf(typeName string) string {
	for _, v := range []any{
		Config{},
		Application{},
		Logging{},
		Registry{},
		Protocol{},
		Service{},
		Reference{},
		Filters{},
		Observability{},
		Metrics{},
		Admin{},
		Tracing{},
		AccessLog{},
	} {
		t := reflect.TypeOf(v)
		if t.Name() != typeName {
			continue
		}
		var names []string
		for i := range t.NumField() {
			names = append(names, yamlName(t.Field(i)))
		}
		return strings.Join(names, ", ")
	}
	return "see the package documentation"
}

func yamlName(f reflect.StructField) string {
	n, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if n == "" {
		return strings.ToLower(f.Name)
	}
	return n
}

// EnvName returns the variable that overrides the field at a path given as
// yaml names and indexes, e.g. ("references", "0", "perTryTimeout") ->
// SHOAL_REFERENCES_0_PER_TRY_TIMEOUT.
func EnvName(path ...string) string {
	var b strings.Builder
	b.WriteString("SHOAL")
	for _, p := range path {
		b.WriteByte('_')
		for i, r := range p {
			if unicode.IsUpper(r) && i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

var durationType = reflect.TypeOf(Duration(0))

// applyEnv walks the configuration and sets every scalar field whose
// variable is set.
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	var errs []error
	var walk func(v reflect.Value, path []string)
	walk = func(v reflect.Value, path []string) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), append(path, yamlName(v.Type().Field(i))))
			}
			return
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.Struct {
				for i := range v.Len() {
					walk(v.Index(i), append(path, strconv.Itoa(i)))
				}
				return
			}
		case reflect.Map:
			return
		}
		name := EnvName(path...)
		s, ok := lookup(name)
		if !ok {
			return
		}
		if err := setScalar(v, s); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q (%s): %w", name, s, fieldPath(path), err))
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), nil)
	return errors.Join(errs...)
}

func fieldPath(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if _, err := strconv.Atoi(p); err == nil {
			b.WriteString("[" + p + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func setScalar(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return errors.New("not a whole number")
		}
		v.SetInt(int64(n))
	case reflect.Uint32:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
		if err != nil {
			return errors.New("not a whole number from 0 to 4294967295")
		}
		v.SetUint(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return errors.New("not true or false")
		}
		v.SetBool(b)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if err := setScalar(p.Elem(), s); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Slice:
		var items []string
		for it := range strings.SplitSeq(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment (%s)", v.Kind())
	}
	return nil
}

// defaultLists fills the default registry and protocol when none is
// configured.
func defaultLists(c *Config) {
	if len(c.Registries) == 0 {
		c.Registries = []Registry{{Name: DefaultRegistry, Kind: "file"}}
	}
	if len(c.Protocols) == 0 {
		c.Protocols = []Protocol{{Name: "tri", Port: DefaultPort}}
	}
}

func applyDefaults(c *Config, exe string) {
	if c.Application.Name == "" {
		c.Application.Name = strings.TrimSuffix(filepath.Base(exe), ".exe")
	}
	if c.Application.DrainDelay == nil {
		d := Duration(DefaultDrainDelay)
		c.Application.DrainDelay = &d
	}
	if c.Application.ShutdownTimeout == 0 {
		c.Application.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	if c.Logging.Level == "" {
		c.Logging.Level = "info"
	}
	if c.Logging.Format == "" {
		c.Logging.Format = "text"
	}
	for i := range c.Registries {
		if c.Registries[i].Name == "" && len(c.Registries) == 1 {
			c.Registries[i].Name = DefaultRegistry
		}
	}
	for i := range c.Protocols {
		if c.Protocols[i].Name == "" {
			c.Protocols[i].Name = "tri"
		}
	}
	for i := range c.Services {
		if c.Services[i].Weight == 0 {
			c.Services[i].Weight = 1
		}
	}
	for i := range c.References {
		r := &c.References[i]
		if r.Name == "" {
			r.Name = r.Interface
		}
		if r.Registry == "" && r.URL == "" && len(c.Registries) > 0 {
			r.Registry = c.Registries[0].Name
		}
		if r.Balancer == "" {
			r.Balancer = DefaultBalancer
		}
		if r.Router == "" {
			r.Router = DefaultRouter
		}
		if r.Cluster == "" {
			r.Cluster = DefaultCluster
		}
		if r.Retries == nil {
			n := uint32(DefaultRetries)
			r.Retries = &n
		}
		if r.Timeout == 0 {
			r.Timeout = Duration(DefaultTimeout)
		}
	}
}
