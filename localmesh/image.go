package localmesh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// GoImage describes an image holding one static Go program, built FROM
// scratch: no base image is pulled, so it works without a registry.
type GoImage struct {
	// Name is the image repository, without registry; the image is tagged
	// localhost/<Name>:<hash of the binary>.
	Name string
	// Dir is the directory go build runs in (a module or workspace member).
	Dir string
	// Package is the main package to build, relative to Dir (e.g. "./cmd/x").
	Package string
}

// BuildGoImage builds the program statically (CGO_ENABLED=0) and an image
// holding only it as the entrypoint. Images are tagged by the binary's
// hash, so an unchanged program reuses its image and a warm build costs
// only the Go build (cached by the Go toolchain).
func (e *Engine) BuildGoImage(ctx context.Context, img GoImage) (string, error) {
	if img.Name == "" || img.Package == "" {
		return "", fmt.Errorf("localmesh: GoImage needs Name and Package, got %+v", img)
	}
	tmp, err := os.MkdirTemp("", "shoal-image-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	bin := filepath.Join(tmp, "app")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, img.Package)
	cmd.Dir = img.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("localmesh: go build %s in %s: %w\n%s", img.Package, img.Dir, err, out)
	}
	sum, err := fileHash(bin)
	if err != nil {
		return "", err
	}
	dockerfile := "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n"
	ref, err := e.buildImage(ctx, tmp, img.Name, sum, dockerfile)
	if err == nil {
		e.logger.Debug("localmesh: image ready", "image", ref, "took", time.Since(start).Round(time.Millisecond))
	}
	return ref, err
}

// buildImage builds the context dir as localhost/name:tag unless that
// image already exists.
func (e *Engine) buildImage(ctx context.Context, dir, name, tag, dockerfile string) (string, error) {
	repo := "localhost/" + name
	ref := repo + ":" + tag
	if _, err := e.api.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o600); err != nil {
		return "", err
	}
	req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context:        dir,
		Repo:           repo,
		Tag:            tag,
		KeepImage:      true,
		BuildLogWriter: io.Discard,
	}}
	got, err := e.prov.BuildImage(ctx, req)
	if err != nil {
		return "", fmt.Errorf("localmesh: build image %s: %w", ref, err)
	}
	// Docker answers with the reference it was given; podman may prefix it.
	if !strings.HasSuffix(got, ref) && !strings.HasSuffix(ref, got) {
		e.logger.Debug("localmesh: engine named the image differently", "want", ref, "got", got)
	}
	return ref, nil
}

func fileHash(path string) (string, error) {
	f, err := os.Open(path) //nolint:gosec // a file this package just wrote
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
