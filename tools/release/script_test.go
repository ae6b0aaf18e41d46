package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyForCheck copies to a new directory what the first step of
// scripts/release-check.sh reads: the scripts, this tool, versions.yaml and
// the go.mod of every released module.
func copyForCheck(t *testing.T) string {
	t.Helper()
	v, err := loadVersions("../..")
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"versions.yaml", "scripts", "tools/release"}
	for _, s := range v.Sets {
		for _, m := range s.Modules {
			paths = append(paths, dir(m)+"/go.mod")
		}
	}
	out, err := exec.Command("git", append([]string{"-C", "../..", "ls-files", "--cached", "--others", "--exclude-standard", "--"}, paths...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, name := range strings.Fields(string(out)) {
		b, err := os.ReadFile(filepath.Join("../..", name))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(filepath.Join("../..", name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestReleaseCheckFails puts back into sdk/go.mod what broke installs before
// (a placeholder require of triple, a replace) and runs the real
// scripts/release-check.sh on the copy: it must fail and name the module and
// the requirement.
func TestReleaseCheckFails(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs scripts/release-check.sh")
	}
	tests := []struct {
		name string
		edit []string // go mod edit flags applied to sdk/go.mod
		want string
	}{
		{"placeholder require", []string{"-require=github.com/shoalmesh/shoal/triple@v0.0.0-00010101000000-000000000000"},
			"sdk/go.mod: requires github.com/shoalmesh/shoal/triple v0.0.0-00010101000000-000000000000, which is not its released version"},
		{"replace", []string{"-replace=github.com/shoalmesh/shoal/triple=../triple"},
			"sdk/go.mod: replace github.com/shoalmesh/shoal/triple => ../triple: a released module must not keep a replace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := copyForCheck(t)
			edit := exec.Command("go", append([]string{"mod", "edit"}, tt.edit...)...)
			edit.Dir = filepath.Join(root, "sdk")
			if out, err := edit.CombinedOutput(); err != nil {
				t.Fatalf("go mod edit: %v\n%s", err, out)
			}
			cmd := exec.Command("bash", filepath.Join(root, "scripts/release-check.sh"))
			cmd.Env = append(os.Environ(), "GOWORK=off")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("release-check passed with sdk/go.mod edited (%v):\n%s", tt.edit, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("release-check failed without naming the module and requirement %q:\n%s", tt.want, out)
			}
			t.Logf("release-check fails as it should:\n%s", out)
		})
	}
}
