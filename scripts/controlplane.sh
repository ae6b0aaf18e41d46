#!/usr/bin/env bash
# Builds the real control-plane binaries the mesh tests, the demo and
# `shoal dev` run, from the Go module proxy, once per machine:
#   etcd v3.6.8, kube-apiserver and kube-controller-manager (k8s.io/kubernetes
#   v1.36.3), istiod (pilot-discovery, istio.io/istio master of 2026-08-27;
#   skipped with SHOAL_IMAGES=public, which runs the istio/pilot image),
# plus Istio's CRDs. Versions are pinned by the modules in
# tools/controlplane/. Output: $SHOAL_CONTROLPLANE_DIR, by default
# ${XDG_CACHE_HOME:-~/.cache}/shoal/controlplane. A component is rebuilt only
# when its tools module's go.mod changes. A cold build takes 15-25 minutes on 2 cores.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

out=${SHOAL_CONTROLPLANE_DIR:-$(cache_dir)/controlplane}
mkdir -p "$out/bin"
export GOWORK=off GOFLAGS=-buildvcs=false

# A component's stamp is its go.mod: that file alone selects what is built
# (go.sum only verifies downloads, and gains lines when the module is tidied).
stamp_of() { sha256sum <"$ROOT/tools/controlplane/$1/go.mod" | cut -c1-16; }

# build COMPONENT BINARY PACKAGE [LDFLAGS]
build() {
	local comp=$1 bin=$2 pkg=$3 ldflags=${4:-}
	local stamp="$out/bin/.$bin.stamp" want
	want=$(stamp_of "$comp")
	if [[ -x "$out/bin/$bin" && -f $stamp && $(cat "$stamp") == "$want" ]]; then
		return 0
	fi
	log "controlplane: building $bin (module tools/controlplane/$comp; a cold build takes minutes, go's cache makes later ones fast)"
	local start=$SECONDS
	(
		cd "$ROOT/tools/controlplane/$comp"
		go build -trimpath -ldflags="-s -w $ldflags" -o "$out/bin/$bin.tmp" "$pkg"
	) &
	local pid=$! ticks=0
	while kill -0 "$pid" 2>/dev/null; do
		sleep 2
		ticks=$((ticks + 1))
		if ((ticks % 15 == 0)) && kill -0 "$pid" 2>/dev/null; then
			log "controlplane:   ... $bin still building ($((SECONDS - start))s)"
		fi
	done
	wait "$pid" || die "building $bin failed; rerun scripts/controlplane.sh to see the error"
	mv "$out/bin/$bin.tmp" "$out/bin/$bin"
	echo "$want" >"$stamp"
	log "controlplane: $bin built in $((SECONDS - start))s"
}

kube_ld="-X k8s.io/component-base/version.gitVersion=v1.36.3 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36"
build etcd etcd go.etcd.io/etcd/server/v3
build kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kube_ld"
build kube kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kube_ld"
# With SHOAL_IMAGES=public, localmesh runs istiod from the istio/pilot image
# and needs no pilot-discovery; Istio's CRDs still come from the module.
if [[ ${SHOAL_IMAGES:-local} == public ]]; then
	log "controlplane: SHOAL_IMAGES=public: istiod runs from the istio/pilot image, pilot-discovery is not built"
else
	build istiod pilot-discovery istio.io/istio/pilot/cmd/pilot-discovery
fi

crds="$out/istio-crds.yaml"
if [[ ! -s $crds || "$(cat "$out/.crds.stamp" 2>/dev/null)" != "$(stamp_of istiod)" ]]; then
	dir=$(cd "$ROOT/tools/controlplane/istiod" && go mod download istio.io/istio && go list -m -f '{{.Dir}}' istio.io/istio)
	[[ -n $dir && -f $dir/manifests/charts/base/files/crd-all.gen.yaml ]] || die "Istio CRDs not found in the module cache ($dir)"
	cat "$dir/manifests/charts/base/files/crd-all.gen.yaml" >"$crds.tmp" && mv -f "$crds.tmp" "$crds"
	stamp_of istiod >"$out/.crds.stamp"
fi
