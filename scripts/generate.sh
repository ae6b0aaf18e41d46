#!/usr/bin/env bash
# Regenerates generated code (go generate in every module). With --check, fails
# when the committed generated code differs from a fresh generation.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

check=false
if [[ ${1:-} == --check ]]; then
	check=true
	shift
fi
command -v protoc >/dev/null || apt_install protobuf-compiler
"$ROOT/scripts/tools.sh" protoc-gen-go protoc-gen-go-grpc
# Shoal's own plugin, built from this checkout.
(cd "$ROOT/triple" && go build -o "$ROOT/.cache/bin/protoc-gen-go-triple" ./cmd/protoc-gen-go-triple)
export PATH="$ROOT/.cache/bin:$PATH"

for m in "$@"; do
	if [[ $m == interop/dubbogo ]]; then
		# Outside the workspace, with its own pinned generators.
		if $check; then "$ROOT/$m/gen.sh" --check; else "$ROOT/$m/gen.sh"; fi
		continue
	fi
	(cd "$ROOT/$m" && go generate ./...)
done
if $check; then
	cd "$ROOT"
	if ! git diff --exit-code --stat -- "$@" || [[ -n $(git ls-files --others --exclude-standard -- "$@") ]]; then
		die "generated code is out of date: run 'make generate' and commit the result"
	fi
fi
