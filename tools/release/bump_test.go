package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBump(t *testing.T) {
	sdkMod := "module github.com/shoalmesh/shoal/sdk\n\ngo 1.26.0\n\nrequire (\n\tgithub.com/shoalmesh/shoal/triple v0.1.0\n\tgolang.org/x/mod v0.42.0\n)\n"
	root := writeTree(t, map[string]string{"versions.yaml": testVersions, "triple/go.mod": tripleMod, "sdk/go.mod": sdkMod})
	if err := bump(root, "v0.3.0", nil); err != nil {
		t.Fatal(err)
	}
	v, err := loadVersions(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range v.Sets {
		if s.Version != "v0.3.0" {
			t.Errorf("set %s at %s after bump, want v0.3.0", s.Name, s.Version)
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "sdk/go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "github.com/shoalmesh/shoal/triple v0.3.0") || !strings.Contains(string(b), "golang.org/x/mod v0.42.0") {
		t.Errorf("sdk/go.mod after bump:\n%s\nwant triple at v0.3.0 and other requires untouched", b)
	}
	if err := check(root, v); err != nil {
		t.Errorf("check after bump: %v", err)
	}

	// One set only: triple moves, sdk stays, sdk's require follows triple.
	if err := bump(root, "v0.4.0", []string{"triple"}); err != nil {
		t.Fatal(err)
	}
	if v, err = loadVersions(root); err != nil {
		t.Fatal(err)
	}
	if got := v.byModule["github.com/shoalmesh/shoal/sdk"]; got != "v0.3.0" {
		t.Errorf("sdk at %s after bumping triple only, want v0.3.0", got)
	}
	if err := check(root, v); err != nil {
		t.Errorf("check after bumping triple: %v", err)
	}

	for _, bad := range []string{"v0.4.0", "v0.2.0", "0.5.0", "v0.5.0-rc.1"} {
		if err := bump(root, bad, []string{"triple"}); err == nil {
			t.Errorf("bump to %s accepted", bad)
		}
	}
}
