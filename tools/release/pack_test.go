package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// goEnv is a user's build against the file-system proxy proxy only, with a
// module cache of the test's own (emptied at cleanup: its files are read-only).
func goEnv(t *testing.T, proxy string) []string {
	cache := t.TempDir()
	t.Cleanup(func() {
		c := exec.Command("go", "clean", "-modcache")
		c.Env = append(os.Environ(), "GOMODCACHE="+cache)
		_ = c.Run()
	})
	return []string{"GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=file://" + proxy, "GONOSUMDB=github.com/shoalmesh/*", "GOMODCACHE=" + cache}
}

// TestPackTags packs a git repository with a release tag and a newer working
// tree: the proxy serves both versions, the go command downloads them, and
// "previous" names the tag as the base gorelease compares against.
func TestPackTags(t *testing.T) {
	root := writeTree(t, map[string]string{
		"versions.yaml":    strings.Replace(testVersions, "  sdk:\n    version: v0.2.0\n    modules:\n      - github.com/shoalmesh/shoal/sdk\n", "", 1),
		"triple/go.mod":    tripleMod,
		"triple/triple.go": "// Package triple is a test module.\npackage triple\n\n// Old is in v0.1.0.\nfunc Old() {}\n",
	})
	git := func(args ...string) {
		run(t, root, []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com"}, "git", args...)
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-qm", "first")
	git("tag", "triple/v0.1.0")
	// The next release: a new function, versions.yaml at v0.2.0.
	if err := os.WriteFile(filepath.Join(root, "triple/new.go"), []byte("package triple\n\n// New is in v0.2.0.\nfunc New() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vy, err := os.ReadFile(filepath.Join(root, "versions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "versions.yaml"), []byte(strings.Replace(string(vy), "v0.1.0", "v0.2.0", 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	proxy := t.TempDir()
	var out strings.Builder
	if err := runCommand([]string{"pack", "-root", root, "-out", proxy}, &out); err != nil {
		t.Fatal(err)
	}
	list, err := os.ReadFile(filepath.Join(proxy, "github.com/shoalmesh/shoal/triple/@v/list"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(list)); strings.Join(got, " ") != "v0.2.0 v0.1.0" {
		t.Errorf("proxy lists %q, want v0.2.0 (tree) and v0.1.0 (tag)", got)
	}

	env := goEnv(t, proxy)
	user := writeTree(t, map[string]string{"go.mod": "module example.com/user\n\ngo 1.26.0\n"})
	for v, want := range map[string]bool{"v0.1.0": false, "v0.2.0": true} {
		dirOut := run(t, user, env, "go", "mod", "download", "-json", "github.com/shoalmesh/shoal/triple@"+v)
		d := between(dirOut, `"Dir": "`, `"`)
		_, err := os.Stat(filepath.Join(d, "new.go"))
		if has := err == nil; has != want {
			t.Errorf("triple@%s from the proxy: new.go present %v, want %v", v, has, want)
		}
	}

	out.Reset()
	if err := runCommand([]string{"previous", "-root", root}, &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "triple v0.2.0 v0.1.0" {
		t.Errorf("previous = %q, want %q", got, "triple v0.2.0 v0.1.0")
	}

	// gorelease, as release-check runs it (on a committed tree), against the
	// tag from the proxy: an added function is a minor release.
	git("add", ".")
	git("commit", "-qm", "next")

	// From a linked worktree (what make release DRY_RUN=1 packs from), the
	// tag comes from the main checkout's repository.
	wt := filepath.Join(t.TempDir(), "wt")
	git("worktree", "add", "-q", "--detach", wt)
	wtProxy := t.TempDir()
	if err := runCommand([]string{"pack", "-root", wt, "-out", wtProxy}, &out); err != nil {
		t.Fatalf("pack from a worktree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(wtProxy, "github.com/shoalmesh/shoal/triple/@v/v0.1.0.zip")); err != nil {
		t.Errorf("pack from a worktree: no zip of the tag: %v", err)
	}
	baseProxy := t.TempDir()
	if err := runCommand([]string{"pack", "-root", root, "-out", baseProxy, "-without", "triple"}, &out); err != nil {
		t.Fatal(err)
	}
	env = goEnv(t, baseProxy)
	gorelease := filepath.Join(t.TempDir(), "gorelease")
	run(t, ".", []string{"GOWORK=off"}, "go", "build", "-o", gorelease, "golang.org/x/exp/cmd/gorelease")
	report := run(t, filepath.Join(root, "triple"), env, gorelease, "-base=v0.1.0")
	if !strings.Contains(report, "Suggested version: v0.2.0") {
		t.Errorf("gorelease -base=v0.1.0 does not suggest v0.2.0:\n%s", report)
	}
	run(t, filepath.Join(root, "triple"), env, gorelease, "-base=v0.1.0", "-version=v0.2.0")
}

func between(s, from, to string) string {
	_, after, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(after, to)
	return v
}
