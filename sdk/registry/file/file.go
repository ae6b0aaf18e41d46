package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"gopkg.in/yaml.v3"

	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// Name is the registry kind, as written in shoal.yaml.
const Name = "file"

// DefaultPath is where the embedded default registry lives when no path is
// configured: a file in the system's temporary directory that every Shoal
// process of this user on the machine shares.
func DefaultPath() string {
	return filepath.Join(os.TempDir(), "shoal-"+currentUser(), "registry.yaml")
}

// Option configures a file registry.
type Option interface{ apply(*options) }

type options struct {
	logger   *slog.Logger
	debounce time.Duration
	liveness time.Duration
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = l })
}

// WithDebounce sets how long the registry waits after a change event before
// reading the file, so that a burst of writes is read once (default 20ms).
func WithDebounce(d time.Duration) Option {
	return optionFunc(func(o *options) { o.debounce = d })
}

// WithLivenessInterval sets how often the registry rechecks that the
// processes owning its instances are alive, dropping those of exited
// processes on this host (default 2s; 0 turns the check off; exited owners
// are still skipped whenever the file is read).
func WithLivenessInterval(d time.Duration) Option {
	return optionFunc(func(o *options) { o.liveness = d })
}

// Registry is a file-backed registry. It is safe for concurrent use.
type Registry struct {
	path   string
	log    *slog.Logger
	feed   registry.Feed
	fsw    *fsnotify.Watcher
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex // guards doc, err, closed and serializes local writes
	doc    *document
	err    error
	closed bool
	opts   options
}

// New opens the registry at path, creating its directory if needed, reads
// the file (a missing file is an empty registry) and starts watching it. It
// fails if the file exists but is invalid, or cannot be watched.
func New(path string, opts ...Option) (*Registry, error) {
	o := options{logger: slog.Default(), debounce: 20 * time.Millisecond, liveness: 2 * time.Second}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if path == "" {
		return nil, errors.New("file registry: empty path; set the registry address to a YAML file such as ./shoal-registry.yaml")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("file registry: path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("file registry: cannot create the directory of %s: %w; choose a writable path", abs, err)
	}
	r := &Registry{path: abs, log: o.logger.With("registry", Name, "path", abs), done: make(chan struct{}), opts: o}
	r.fsw, err = fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("file registry: cannot watch %s: %w", abs, err)
	}
	// Watch the directory, not the file: editors and Register replace the
	// file by renaming a new one over it. The watch starts before the
	// first read, so a write right after that read is an event, not lost
	// (another process registering while this one starts).
	if err := r.fsw.Add(filepath.Dir(abs)); err != nil {
		_ = r.fsw.Close()
		return nil, fmt.Errorf("file registry: cannot watch the directory of %s: %w", abs, err)
	}
	doc, err := r.read()
	if err != nil {
		_ = r.fsw.Close()
		return nil, err
	}
	r.install(doc)
	if testHookFirstRead != nil {
		testHookFirstRead(abs)
	}
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

// testHookFirstRead, set by tests, runs right after New's first read.
var testHookFirstRead func(path string)

// Path returns the absolute path of the file.
func (r *Registry) Path() string { return r.path }

// Err returns the error of the last reload, or nil if the file in use is
// the one on disk.
func (r *Registry) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *Registry) read() (*document, error) {
	data, err := os.ReadFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &document{Services: map[string]*service{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("file registry: cannot read %s: %w", r.path, err)
	}
	doc, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("file registry: %s rejected: %w", r.path, err)
	}
	return doc, nil
}

func (r *Registry) install(doc *document) {
	r.mu.Lock()
	r.doc = doc
	r.err = nil
	r.mu.Unlock()
	r.feed.Publish(func(k registry.Key) *mesh.Snapshot {
		s, err := doc.snapshot(k)
		if err != nil { // only keys no instance uses can get here
			r.log.Error("file registry: no state for this key", "key", k.String(), "error", err)
			return nil
		}
		return s
	})
}

func (r *Registry) loop() {
	defer r.wg.Done()
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var live <-chan time.Time
	if r.opts.liveness > 0 {
		t := time.NewTicker(r.opts.liveness)
		defer t.Stop()
		live = t.C
	}
	for {
		select {
		case <-r.done:
			return
		case ev, ok := <-r.fsw.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) != r.path {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(r.opts.debounce)
			} else {
				timer.Reset(r.opts.debounce)
			}
			fire = timer.C
		case err, ok := <-r.fsw.Errors:
			if !ok {
				return
			}
			r.log.Warn("file registry: watch error; edits may be missed until the next change", "error", err)
		case <-fire:
			fire = nil
			_ = r.Reload() // a rejected edit is logged and kept for Err
		case <-live:
			// Recompute every key's state from the same file: only keys
			// whose owners exited get a new revision and wake up.
			r.mu.Lock()
			doc := r.doc
			r.mu.Unlock()
			r.install(doc)
		}
	}
}

// Reload reads the file now. A valid file replaces the state and Reload
// returns nil; an invalid one is rejected, the last good state stays in
// use, and the error is logged, returned and kept for Err.
func (r *Registry) Reload() error {
	doc, err := r.read()
	if err != nil {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		r.log.Error("file registry: edit rejected; the last good state stays in use until the file is fixed", "error", err)
		return err
	}
	r.install(doc)
	r.log.Debug("file registry: reloaded", "services", len(doc.Services))
	return nil
}

// Watch returns a watcher of the providers of key.
func (r *Registry) Watch(_ context.Context, key registry.Key) (registry.Watcher, error) {
	if err := key.Validate(); err != nil {
		return nil, err
	}
	return r.feed.Watch(key), nil
}

// Register adds the instance to the file, replacing an entry with the same
// address, group and version.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) error {
	if err := inst.Validate(); err != nil {
		return err
	}
	return r.edit(ctx, func(doc *document) {
		svc := doc.Services[inst.Interface]
		if svc == nil {
			svc = &service{}
			doc.Services[inst.Interface] = svc
		}
		svc.Instances = slices.DeleteFunc(svc.Instances, func(in instance) bool { return same(in, inst) })
		in := instance{
			Address: inst.Address, Group: inst.Group, Version: inst.Version, Weight: inst.Weight, Labels: inst.Labels,
			Owner: &owner{Host: thisHost, PID: os.Getpid()},
		}
		if l := inst.Locality; l != (mesh.Locality{}) {
			in.Locality = &locality{Region: l.Region, Zone: l.Zone, SubZone: l.SubZone}
		}
		svc.Instances = append(svc.Instances, in)
	})
}

// Deregister removes the instance from the file; removing an absent
// instance is not an error.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	if err := inst.Key.Validate(); err != nil {
		return err
	}
	return r.edit(ctx, func(doc *document) {
		if svc := doc.Services[inst.Interface]; svc != nil {
			svc.Instances = slices.DeleteFunc(svc.Instances, func(in instance) bool { return same(in, inst) })
		}
	})
}

func same(in instance, inst registry.Instance) bool {
	return in.Address == inst.Address && in.Group == inst.Group && in.Version == inst.Version
}

// edit applies change to the file on disk under an exclusive lock shared
// by every process, writes the result atomically and installs it.
func (r *Registry) edit(ctx context.Context, change func(*document)) error {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return errors.New("file registry: closed; register before closing the registry")
	}
	unlock, err := lockFile(ctx, r.path+".lock")
	if err != nil {
		return fmt.Errorf("file registry: cannot lock %s: %w", r.path, err)
	}
	defer unlock()
	doc, err := r.read()
	if err != nil {
		return fmt.Errorf("%w; fix the file before registering", err)
	}
	change(doc)
	for _, svc := range doc.Services { // prune instances of exited processes
		if svc != nil {
			svc.Instances = slices.DeleteFunc(svc.Instances, func(in instance) bool { return in.Owner.gone() })
		}
	}
	for name, svc := range doc.Services {
		if svc == nil || (len(svc.Instances) == 0 && svc.LoadBalancer == nil && len(svc.Subsets) == 0 && len(svc.Routes) == 0) {
			delete(doc.Services, name)
		}
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return fmt.Errorf("file registry: encoding %s: %w", r.path, err)
	}
	if _, err := parse(data); err != nil {
		return fmt.Errorf("file registry: the change would make %s invalid: %w", r.path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(r.path), ".registry-*.yaml")
	if err != nil {
		return fmt.Errorf("file registry: cannot write next to %s: %w", r.path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("file registry: writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), r.path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("file registry: replacing %s: %w", r.path, err)
	}
	// Install at once rather than waiting for the change event, so that a
	// Register is visible to this process's consumers when it returns.
	r.install(doc)
	return nil
}

// Close stops watching the file and ends every watcher. The file is left
// as it is; deregister providers before closing.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	close(r.done)
	err := r.fsw.Close()
	r.wg.Wait()
	r.feed.Close()
	return err
}

var thisHost, _ = os.Hostname()

// Builder returns the builder of kind "file". Its Config.Address is the
// file's path; empty means DefaultPath().
func Builder() registry.Builder { return builder{} }

type builder struct{}

func (builder) Name() string { return Name }

func (builder) Build(_ context.Context, cfg registry.Config) (registry.Registry, error) {
	path := cfg.Address
	if path == "" {
		path = DefaultPath()
	}
	var opts []Option
	if cfg.Logger != nil {
		opts = append(opts, WithLogger(cfg.Logger))
	}
	if d, ok := cfg.Params["debounce"]; ok {
		v, err := time.ParseDuration(d)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("file registry %s: params.debounce %q is not a duration; write it like 20ms", cfg.Name, d)
		}
		opts = append(opts, WithDebounce(v))
	}
	return New(path, opts...)
}
