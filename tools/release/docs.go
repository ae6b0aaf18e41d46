package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// installLine matches a versioned Shoal module or command in the docs:
// github.com/shoalmesh/shoal/sdk@v0.1.0, .../triple/cmd/protoc-gen-go-triple@v0.1.0.
var installLine = regexp.MustCompile(`github\.com/shoalmesh/shoal/([a-z-]+)(?:/[A-Za-z0-9_./-]*)?@(v[0-9]+\.[0-9]+\.[0-9]+)\b`)

// checkDocs fails when a Markdown file under root names a released module at
// another version than versions.yaml: install lines must work as written.
func checkDocs(root string, v *versions) error {
	versionOf := map[string]string{}
	for _, s := range v.Sets {
		for _, m := range s.Modules {
			versionOf[dir(m)] = s.Version
		}
	}
	var errs []error
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(root, path)
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			for _, m := range installLine.FindAllStringSubmatch(sc.Text(), -1) {
				if want, ok := versionOf[m[1]]; ok && m[2] != want {
					errs = append(errs, fmt.Errorf("%s:%d: %s, but versions.yaml releases %s at %s; fix the line", rel, n, m[0], m[1], want))
				}
			}
		}
		return sc.Err()
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}
