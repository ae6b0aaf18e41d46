#!/usr/bin/env bash
# Installs everything the full test suite needs on a Debian machine. Idempotent:
# on a warm machine it checks and returns in seconds. Each step is its own
# script so it can also run alone.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

apt_install protobuf-compiler ca-certificates haproxy prometheus
"$ROOT/scripts/tools.sh" protoc-gen-go protoc-gen-go-grpc grpcurl h2spec buf helm
for step in podman.sh controlplane.sh java.sh; do
	if [[ -x "$ROOT/scripts/$step" ]]; then
		"$ROOT/scripts/$step"
	fi
done
