package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/semver"
	"gopkg.in/yaml.v3"
)

// repoPath is the module path prefix every Shoal module shares.
const repoPath = "github.com/shoalmesh/shoal/"

// releaseOrder is the dependency order in which release sets are tagged:
// a module is tagged after every Shoal module it requires.
var releaseOrder = []string{"triple", "sdk", "router-mesh", "registry-istio", "observability", "localmesh", "cli"}

// set is one release set of versions.yaml: modules tagged together as
// <dir>/<version>.
type set struct {
	Name    string
	Version string
	Modules []string
}

// versions is the parsed versions.yaml.
type versions struct {
	Sets     []set             // in releaseOrder
	byModule map[string]string // module path -> version
	excluded map[string]bool
}

type versionsFile struct {
	ModuleSets map[string]struct {
		Version string   `yaml:"version"`
		Modules []string `yaml:"modules"`
	} `yaml:"module-sets"`
	ExcludedModules []string `yaml:"excluded-modules"`
}

// loadVersions reads root/versions.yaml and validates it: every set has a
// semantic version and every set is placed in the release order.
func loadVersions(root string) (*versions, error) {
	name := filepath.Join(root, "versions.yaml")
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var f versionsFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	v := &versions{byModule: map[string]string{}, excluded: map[string]bool{}}
	for _, m := range f.ExcludedModules {
		v.excluded[m] = true
	}
	seen := map[string]bool{}
	for _, n := range releaseOrder {
		s, ok := f.ModuleSets[n]
		if !ok {
			continue
		}
		seen[n] = true
		if !semver.IsValid(s.Version) || semver.Prerelease(s.Version) != "" || semver.Build(s.Version) != "" {
			return nil, fmt.Errorf("%s: set %s has version %q; want a release version like v1.2.3", name, n, s.Version)
		}
		for _, m := range s.Modules {
			if !strings.HasPrefix(m, repoPath) {
				return nil, fmt.Errorf("%s: set %s lists %s, outside %s", name, n, m, repoPath)
			}
			v.byModule[m] = s.Version
		}
		v.Sets = append(v.Sets, set{Name: n, Version: s.Version, Modules: s.Modules})
	}
	var errs []error
	for n := range f.ModuleSets {
		if !seen[n] {
			errs = append(errs, fmt.Errorf("%s: set %s has no place in the release order %v; add it to releaseOrder in tools/release/versions.go", name, n, releaseOrder))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return v, nil
}

// dir is the directory of a Shoal module, relative to the repository root,
// which is also its tag prefix.
func dir(modPath string) string { return strings.TrimPrefix(modPath, repoPath) }
