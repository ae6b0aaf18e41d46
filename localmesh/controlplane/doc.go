// Package controlplane builds the control-plane binaries localmesh runs
// (etcd, kube-apiserver, kube-controller-manager and istiod's
// pilot-discovery) and Istio's CRDs, from pinned modules carried inside
// this package, into a per-user cache directory.
//
// The pins are three Go modules (etcd, kube, istiod) stored under
// modules/ as NAME.go.mod and NAME.go.sum: a file named go.mod would make
// its directory a module of its own, cut from localmesh's module zip and
// from go:embed. They are the only copy: scripts/controlplane.sh, the
// `shoal dev up` command and a program of a localmesh user all build
// through Builder (see cmd/shoal-controlplane). kube-apiserver needs one
// replace line per Kubernetes staging module, so a plain `go install`
// cannot build it; Builder writes a module to a temporary directory and
// runs `go build` there (GOWORK=off, -trimpath), which needs the Go
// toolchain and the Go module proxy.
//
// A binary is rebuilt only when its module's go.mod changes: beside
// bin/NAME, bin/.NAME.stamp holds the first 16 hex digits of the SHA-256
// of that go.mod, and .crds.stamp the istiod module's for
// istio-crds.yaml.
package controlplane
