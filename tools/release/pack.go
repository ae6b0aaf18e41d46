package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

// pack writes a file-system module proxy (the GOPROXY=file:// layout) to out:
// every released module from the working tree at root, at its versions.yaml
// version, and, when root is a git checkout, every earlier release tag
// <dir>/vX.Y.Z from git, so gorelease can compare against it. Zips are made
// with golang.org/x/mod/zip, the format and checks the Go module proxy uses.
// The set named without gets only its tags: gorelease compares a module
// against the newest version the proxy knows, so the proxy it uses must not
// know the version being checked.
func pack(root, out string, v *versions, without string) error {
	for _, s := range v.Sets {
		for _, m := range s.Modules {
			d := filepath.Join(root, dir(m))
			mv := module.Version{Path: m, Version: s.Version}
			if s.Name != without {
				err := writeVersion(out, mv, func(f *os.File) error { return zip.CreateFromDir(f, mv, d) }, filepath.Join(d, "go.mod"))
				if err != nil {
					return err
				}
			}
			tags, err := releaseTags(root, dir(m))
			if err != nil {
				return err
			}
			for _, t := range tags {
				if semver.Compare(t, s.Version) >= 0 {
					continue // the working tree is what this version would ship
				}
				tv := module.Version{Path: m, Version: t}
				tag := dir(m) + "/" + t
				vcsRoot, err := repoRoot(root)
				if err != nil {
					return err
				}
				err = writeVersion(out, tv, func(f *os.File) error { return zip.CreateFromVCS(f, tv, vcsRoot, tag, dir(m)) }, "")
				if err != nil {
					return fmt.Errorf("pack tag %s: %w", tag, err)
				}
				gomod, err := gitOutput(root, "show", tag+":"+dir(m)+"/go.mod")
				if err != nil {
					return err
				}
				if err := os.WriteFile(proxyFile(out, tv, ".mod"), gomod, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// writeVersion writes the .zip, .info, .mod (copied from gomod unless empty)
// and the list entry of one module version.
func writeVersion(out string, mv module.Version, create func(*os.File) error, gomod string) error {
	zipName := proxyFile(out, mv, ".zip")
	if err := os.MkdirAll(filepath.Dir(zipName), 0o755); err != nil {
		return err
	}
	f, err := os.Create(zipName)
	if err != nil {
		return err
	}
	if err := create(f); err != nil {
		f.Close()
		return fmt.Errorf("pack %s@%s: %w", mv.Path, mv.Version, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	info, err := json.Marshal(struct{ Version string }{mv.Version})
	if err != nil {
		return err
	}
	if err := os.WriteFile(proxyFile(out, mv, ".info"), info, 0o644); err != nil {
		return err
	}
	if gomod != "" {
		b, err := os.ReadFile(gomod)
		if err != nil {
			return err
		}
		if err := os.WriteFile(proxyFile(out, mv, ".mod"), b, 0o644); err != nil {
			return err
		}
	}
	list := filepath.Join(filepath.Dir(zipName), "list")
	lf, err := os.OpenFile(list, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(lf, mv.Version)
	if cerr := lf.Close(); err == nil {
		err = cerr
	}
	return err
}

// proxyFile is the path of one file of a module version in a GOPROXY layout.
func proxyFile(out string, mv module.Version, ext string) string {
	p, err := module.EscapePath(mv.Path)
	if err != nil {
		panic(err) // Shoal module paths are lower case ASCII, checked by loadVersions
	}
	return filepath.Join(out, filepath.FromSlash(p), "@v", mv.Version+ext)
}

// releaseTags lists the release tags <d>/vX.Y.Z of a module, oldest first;
// none when root is not a git checkout (a copy of the tree).
func releaseTags(root, d string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		return nil, nil
	}
	out, err := gitOutput(root, "tag", "--list", d+"/v*")
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, t := range strings.Fields(string(out)) {
		v := strings.TrimPrefix(t, d+"/")
		if semver.IsValid(v) && semver.Prerelease(v) == "" {
			tags = append(tags, v)
		}
	}
	semver.Sort(tags)
	return tags, nil
}

func gitOutput(root string, args ...string) ([]byte, error) {
	cmd := exec.Command("git", append([]string{"-C", root}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// repoRoot is the checkout whose .git directory holds root's repository:
// root itself, or for a linked worktree (whose .git is a file, which
// zip.CreateFromVCS does not follow) the main checkout. Tags are shared.
func repoRoot(root string) (string, error) {
	if fi, err := os.Stat(filepath.Join(root, ".git")); err == nil && fi.IsDir() {
		return root, nil
	}
	out, err := gitOutput(root, "rev-parse", "--path-format=absolute", "--git-common-dir")
	if err != nil {
		return "", err
	}
	common := strings.TrimSpace(string(out))
	if filepath.Base(common) != ".git" {
		return "", fmt.Errorf("%s: the repository %s is not a .git directory of a checkout; pack tags from a normal clone", root, common)
	}
	return filepath.Dir(common), nil
}
