package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
)

// check returns one error per broken rule in the go.mod of every released
// module: no replace directive (a user's build ignores it, so the module would
// only build inside this repository), and every Shoal module it requires is a
// released one, at the version versions.yaml releases.
func check(root string, v *versions) error {
	var errs []error
	for _, s := range v.Sets {
		for _, m := range s.Modules {
			errs = append(errs, checkModule(root, m, v)...)
		}
	}
	return errors.Join(errs...)
}

func checkModule(root, modPath string, v *versions) []error {
	name := filepath.Join(dir(modPath), "go.mod")
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		return []error{fmt.Errorf("%s: %w (versions.yaml lists %s)", name, err, modPath)}
	}
	f, err := modfile.Parse(name, b, nil)
	if err != nil {
		return []error{err}
	}
	var errs []error
	if f.Module == nil || f.Module.Mod.Path != modPath {
		errs = append(errs, fmt.Errorf("%s: module path is not %s, which versions.yaml releases from this directory", name, modPath))
	}
	for _, r := range f.Replace {
		errs = append(errs, fmt.Errorf("%s: replace %s => %s: a released module must not keep a replace (users' builds ignore it); remove it (go mod edit -dropreplace=%s), go.work resolves sibling modules locally",
			name, r.Old.Path, joinVersion(r.New.Path, r.New.Version), r.Old.Path))
	}
	for _, r := range f.Require {
		p := r.Mod.Path
		if !strings.HasPrefix(p, repoPath) {
			continue
		}
		want, released := v.byModule[p]
		switch {
		case !released:
			errs = append(errs, fmt.Errorf("%s: requires %s %s, a module that is never released (not in a versions.yaml set); a released module cannot depend on it",
				name, p, r.Mod.Version))
		case r.Mod.Version != want:
			errs = append(errs, fmt.Errorf("%s: requires %s %s, which is not its released version; versions.yaml releases it at %s: run (cd %s && go mod edit -require=%s@%s)",
				name, p, r.Mod.Version, want, dir(modPath), p, want))
		}
	}
	return errs
}

func joinVersion(path, version string) string {
	if version == "" {
		return path
	}
	return path + " " + version
}
