#!/usr/bin/env bash
# Builds the real control-plane binaries the mesh tests, the demo and
# `shoal dev` run, from the Go module proxy, once per machine:
#   etcd v3.6.8, kube-apiserver and kube-controller-manager (k8s.io/kubernetes
#   v1.36.3), istiod (pilot-discovery, istio.io/istio master of 2026-08-27;
#   skipped with SHOAL_IMAGES=public, which runs the istio/pilot image),
# plus Istio's CRDs. Output: $SHOAL_CONTROLPLANE_DIR, by default
# ${XDG_CACHE_HOME:-~/.cache}/shoal/controlplane. A cold build takes 15-25
# minutes on 2 cores.
#
# A thin wrapper: the pins (localmesh/controlplane/modules/*.go.mod, .go.sum)
# and the build (stamps, flags, progress) live in localmesh's controlplane
# package, the one copy that also travels inside the released `shoal`
# binary (`shoal dev up` builds with it). Arguments pass through to
# localmesh/cmd/shoal-controlplane (-check, -dir, -write-modules DIR).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

cd "$ROOT"
exec go run ./localmesh/cmd/shoal-controlplane "$@"
