// Package dubbogo is the dubbo-go peer of the interop suite: dubbo-go v3.3.2
// (its Triple server, its gRPC-flavour client and its triple-flavour client)
// and the legacy github.com/dubbogo/triple v1.2.2-rc4 client. They live in
// the interop/dubbogo module, outside the workspace, and run as the
// dubbogo-peer process speaking package proc's protocol.
package dubbogo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/interop/peer/proc"
)

// Build returns the dubbogo-peer binary for the sources of interop/dubbogo,
// building it (GOWORK=off) only when they changed since the cached build in
// .cache/bin/dubbogo. A cold build takes minutes; a warm run, none.
func Build(ctx context.Context, repoRoot string) (string, error) {
	src := filepath.Join(repoRoot, "interop", "dubbogo")
	sum, err := sourceHash(src)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(repoRoot, ".cache", "bin", "dubbogo")
	bin := filepath.Join(dir, "dubbogo-peer-"+sum[:16])
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, "./cmd/dubbogo-peer")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false -mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build interop/dubbogo (GOWORK=off go build ./cmd/dubbogo-peer): %w\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	// Older builds of other sources are of no further use.
	old, _ := filepath.Glob(filepath.Join(dir, "dubbogo-peer-*"))
	for _, o := range old {
		if o != bin {
			_ = os.Remove(o)
		}
	}
	return bin, nil
}

// sourceHash digests the module's go.mod, go.sum and Go files (not tools/).
func sourceHash(src string) (string, error) {
	var files []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "tools" {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		rel, _ := filepath.Rel(src, f)
		fmt.Fprintf(h, "%s\n", rel)
		r, err := os.Open(f) //nolint:gosec // files of this repository
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, r)
		_ = r.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Server is dubbo-go's Triple server. It answers the gRPC flavour and the
// triple flavour on one port and routes on group and version.
type Server struct{ Bin string }

// Name implements peer.Server.
func (Server) Name() string { return "dubbo-go" }

// Supports implements peer.Server: everything but wrapper mode, which the
// dubbo-go peer does not serve (it has no GreetingService).
func (Server) Supports(need string) bool { return need != cases.NeedWrapper }

// Start implements peer.Server.
func (s Server) Start(ctx context.Context) (string, func(), error) {
	port, err := proc.FreePort()
	if err != nil {
		return "", nil, err
	}
	stop, err := proc.StartServer(ctx, exec.Command(s.Bin, "server", "-port", strconv.Itoa(port)), 30*time.Second)
	if err != nil {
		return "", nil, fmt.Errorf("dubbo-go server: %w", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), stop, nil
}

// Flavours of Client.
const (
	// GRPC is dubbo-go's client.Client: gRPC over HTTP/2.
	GRPC = "grpc"
	// Triple is dubbo-go's triple flavour (Triple-Protocol-Version,
	// application/proto, unframed unary bodies). It is unary only: dubbo-go's
	// triple protocol has no streaming form.
	Triple = "triple"
	// Legacy is github.com/dubbogo/triple v1.2.2-rc4 on its grpc-go 1.42 fork.
	Legacy = "legacy"
)

// Client is one of the dubbo-go clients.
type Client struct{ Bin, Flavour string }

// Name implements peer.Client.
func (c Client) Name() string {
	switch c.Flavour {
	case Triple:
		return "dubbo-go-triple"
	case Legacy:
		return "dubbogo-triple-legacy"
	default:
		return "dubbo-go-grpc"
	}
}

// Supports tells the suite that the dubbo-go clients do not call
// GreetingService in wrapper mode (see peer.Supports).
func (Client) Supports(need string) bool { return need != cases.NeedWrapper }

// Handles reports whether the client can make c's call at all.
func (c Client) Handles(k cases.Case) (bool, string) {
	if c.Flavour == Triple && k.Method != cases.MethodUnary {
		return false, "dubbo-go's triple flavour is unary only: its client sends streams without a content-type and its protocol panics on stream types"
	}
	return true, ""
}

// Run implements peer.Client: one process runs every case.
func (c Client) Run(ctx context.Context, addr string, cs []cases.Case) ([]cases.Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	return proc.RunClient(exec.CommandContext(ctx, c.Bin, "client", "-flavour", c.Flavour, "-target", addr), cs)
}
