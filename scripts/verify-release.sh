#!/usr/bin/env bash
# Checks the release layout: every library module has a release set in
# versions.yaml, and the CLI module has no replace directive (a replace makes
# `go install github.com/shoalmesh/shoal/cli/cmd/shoal@version` fail).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

for m in triple sdk registry-istio router-mesh localmesh cli; do
	grep -q "github.com/shoalmesh/shoal/$m\$" versions.yaml ||
		die "versions.yaml: no release set lists github.com/shoalmesh/shoal/$m; add one"
done
if [[ -n $(cd cli && go mod edit -json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Replace") or "")') ]]; then
	die "cli/go.mod has replace directives; go install .../cli/cmd/shoal@version would fail. Use go.work for local development"
fi
echo "release layout ok"
