// Command shoal-controlplane builds the control-plane binaries localmesh
// runs (etcd, kube-apiserver, kube-controller-manager, pilot-discovery) and
// Istio's CRDs into $SHOAL_CONTROLPLANE_DIR, else
// ${XDG_CACHE_HOME:-~/.cache}/shoal/controlplane, from the modules pinned in
// package controlplane; SHOAL_IMAGES=public skips pilot-discovery. Only what
// is missing or pinned differently is built. scripts/controlplane.sh runs it;
// a program that uses localmesh can run it with
//
//	go run github.com/shoalmesh/shoal/localmesh/cmd/shoal-controlplane
//
// Flags: -dir overrides the output directory; -check lists what is stale and
// exits 1 if anything is, building nothing; -write-modules DIR writes each
// pinned module to DIR/NAME/go.mod and go.sum (to edit or tidy a pin, then
// copy the files back to localmesh/controlplane/modules/NAME.go.mod and
// NAME.go.sum); -tidy-diff runs go mod tidy -diff on each pinned module
// (make verify-tidy).
package main
