package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// bump sets the version of the named release sets (all when names is empty)
// to version in versions.yaml, then points every Shoal require of every
// released module at the versions.yaml version of that module.
func bump(root, version string, names []string) error {
	if !semver.IsValid(version) || semver.Canonical(version) != version || semver.Prerelease(version) != "" {
		return fmt.Errorf("version %q: want a release version like v1.2.3", version)
	}
	v, err := loadVersions(root)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		for _, s := range v.Sets {
			names = append(names, s.Name)
		}
	}
	name := filepath.Join(root, "versions.yaml")
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	text := string(b)
	for _, n := range names {
		// The first "version:" line after the set's own line.
		re := regexp.MustCompile(`(?m)^(  ` + regexp.QuoteMeta(n) + `:\n(?:    #.*\n)*    version: )(\S+)`)
		m := re.FindStringSubmatchIndex(text)
		if m == nil {
			return fmt.Errorf("%s: no set %s with a version line", name, n)
		}
		if old := text[m[4]:m[5]]; semver.Compare(version, old) <= 0 {
			return fmt.Errorf("%s: set %s is at %s already; %s would not be newer", name, n, old, version)
		}
		text = text[:m[4]] + version + text[m[5]:]
	}
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		return err
	}
	if v, err = loadVersions(root); err != nil {
		return err
	}
	for _, s := range v.Sets {
		for _, m := range s.Modules {
			if err := pinRequires(filepath.Join(root, dir(m), "go.mod"), v); err != nil {
				return err
			}
		}
	}
	return nil
}

// pinRequires rewrites every require of a released Shoal module in one go.mod
// to that module's versions.yaml version.
func pinRequires(name string, v *versions) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	f, err := modfile.Parse(name, b, nil)
	if err != nil {
		return err
	}
	changed := false
	for _, r := range f.Require {
		want, ok := v.byModule[r.Mod.Path]
		if !ok || !strings.HasPrefix(r.Mod.Path, repoPath) || r.Mod.Version == want {
			continue
		}
		if err := f.AddRequire(r.Mod.Path, want); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		return nil
	}
	out, err := f.Format()
	if err != nil {
		return err
	}
	return os.WriteFile(name, out, 0o644)
}
