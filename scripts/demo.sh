#!/usr/bin/env bash
# The main job: a real proxyless mesh on this machine (see interop/demo).
#   1. installs what it needs (scripts/deps.sh: podman, the control plane built
#      from source into the user cache, the Java samples) - slow only the first time;
#   2. starts etcd, kube-apiserver, kube-controller-manager and istiod;
#   3. runs Go providers of greet.GreetService v1 and v2 and a Java Dubbo 3.3
#      provider in containers (Pods), all behind one ServiceEntry;
#   4. runs a Shoal consumer that calls greet.GreetService by interface name only;
#   5. shifts traffic v1 -> v1/v2 -> v2 -> v2/java -> java with VirtualService
#      applies and prints the live split each second; fails if any call fails.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

log "demo: checking dependencies (the first run builds istiod and Kubernetes from source: ~20 min)"
"$ROOT/scripts/deps.sh"
cd "$ROOT"
exec go run ./interop/cmd/demo "$@"
