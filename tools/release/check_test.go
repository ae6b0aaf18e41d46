package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (path -> content) under a new temporary root.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const testVersions = `module-sets:
  triple:
    version: v0.1.0
    modules:
      - github.com/shoalmesh/shoal/triple
  sdk:
    version: v0.2.0
    modules:
      - github.com/shoalmesh/shoal/sdk
excluded-modules:
  - github.com/shoalmesh/shoal/proto
`

const tripleMod = "module github.com/shoalmesh/shoal/triple\n\ngo 1.26.0\n"

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		sdkMod string
		want   []string // substrings of the error; none: no error
	}{
		{
			name:   "released versions",
			sdkMod: "module github.com/shoalmesh/shoal/sdk\n\ngo 1.26.0\n\nrequire github.com/shoalmesh/shoal/triple v0.1.0\n",
		},
		{
			name:   "placeholder require",
			sdkMod: "module github.com/shoalmesh/shoal/sdk\n\ngo 1.26.0\n\nrequire github.com/shoalmesh/shoal/triple v0.0.0-00010101000000-000000000000\n",
			want:   []string{"sdk/go.mod: requires github.com/shoalmesh/shoal/triple v0.0.0-00010101000000-000000000000", "releases it at v0.1.0"},
		},
		{
			name:   "older release",
			sdkMod: "module github.com/shoalmesh/shoal/sdk\n\ngo 1.26.0\n\nrequire github.com/shoalmesh/shoal/triple v0.0.9\n",
			want:   []string{"sdk/go.mod: requires github.com/shoalmesh/shoal/triple v0.0.9", "go mod edit -require=github.com/shoalmesh/shoal/triple@v0.1.0"},
		},
		{
			name:   "replace",
			sdkMod: "module github.com/shoalmesh/shoal/sdk\n\ngo 1.26.0\n\nrequire github.com/shoalmesh/shoal/triple v0.1.0\n\nreplace github.com/shoalmesh/shoal/triple => ../triple\n",
			want:   []string{"sdk/go.mod: replace github.com/shoalmesh/shoal/triple => ../triple", "must not keep a replace"},
		},
		{
			name:   "unreleased module",
			sdkMod: "module github.com/shoalmesh/shoal/sdk\n\ngo 1.26.0\n\nrequire github.com/shoalmesh/shoal/proto v0.1.0\n",
			want:   []string{"sdk/go.mod: requires github.com/shoalmesh/shoal/proto v0.1.0, a module that is never released"},
		},
		{
			name:   "wrong module path",
			sdkMod: "module example.com/sdk\n\ngo 1.26.0\n",
			want:   []string{"sdk/go.mod: module path is not github.com/shoalmesh/shoal/sdk"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, map[string]string{
				"versions.yaml": testVersions,
				"triple/go.mod": tripleMod,
				"sdk/go.mod":    tt.sdkMod,
			})
			v, err := loadVersions(root)
			if err != nil {
				t.Fatal(err)
			}
			err = check(root, v)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("check: %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("check passed, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("check error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestCheckRepository runs the check on this repository: what make
// release-check and CI see.
func TestCheckRepository(t *testing.T) {
	v, err := loadVersions("../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Sets) != len(releaseOrder) {
		t.Errorf("versions.yaml has %d release sets, want one per module in %v", len(v.Sets), releaseOrder)
	}
	if err := check("../..", v); err != nil {
		t.Fatal(err)
	}
}

func TestLoadVersionsRejects(t *testing.T) {
	for name, content := range map[string]string{
		"not semver": "module-sets:\n  triple:\n    version: 0.1\n    modules:\n      - github.com/shoalmesh/shoal/triple\n",
		"prerelease": "module-sets:\n  triple:\n    version: v0.1.0-rc.1\n    modules:\n      - github.com/shoalmesh/shoal/triple\n",
		"no order":   "module-sets:\n  extra:\n    version: v0.1.0\n    modules:\n      - github.com/shoalmesh/shoal/extra\n",
		"foreign":    "module-sets:\n  triple:\n    version: v0.1.0\n    modules:\n      - example.com/triple\n",
	} {
		t.Run(name, func(t *testing.T) {
			root := writeTree(t, map[string]string{"versions.yaml": content})
			if _, err := loadVersions(root); err == nil {
				t.Fatal("loadVersions accepted it")
			}
		})
	}
}

func TestCheckDocs(t *testing.T) {
	root := writeTree(t, map[string]string{
		"versions.yaml": testVersions,
		"README.md":     "go get github.com/shoalmesh/shoal/sdk@v0.2.0\ngo install github.com/shoalmesh/shoal/triple/cmd/protoc-gen-go-triple@v0.1.0\n",
		"sdk/README.md": "intro\n\n    go get github.com/shoalmesh/shoal/sdk@v0.1.0 # stale\ngo get github.com/shoalmesh/shoal/proto@v9.9.9\n",
	})
	v, err := loadVersions(root)
	if err != nil {
		t.Fatal(err)
	}
	err = checkDocs(root, v)
	if err == nil || !strings.Contains(err.Error(), "sdk/README.md:3: github.com/shoalmesh/shoal/sdk@v0.1.0, but versions.yaml releases sdk at v0.2.0") {
		t.Fatalf("checkDocs: %v, want the stale line of sdk/README.md", err)
	}
	if strings.Contains(err.Error(), "README.md:1") || strings.Contains(err.Error(), "proto") {
		t.Errorf("checkDocs flagged a line that is right or names an unreleased module: %v", err)
	}
	if err := checkDocs("../..", mustVersions(t, "../..")); err != nil {
		t.Errorf("this repository's docs: %v", err)
	}
}

func mustVersions(t *testing.T, root string) *versions {
	t.Helper()
	v, err := loadVersions(root)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
