#!/usr/bin/env bash
# Fails if any given module's go.mod/go.sum is not tidy.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

bad=()
for m in "$@"; do
	if ! in_workspace "$m"; then
		out=$(cd "$ROOT/$m" && GOWORK=off go mod tidy -diff 2>&1) || bad+=("$m")
	else
		out=$(cd "$ROOT/$m" && go mod tidy -diff 2>&1) || bad+=("$m")
	fi
	[[ -n $out ]] && printf '%s\n' "$out"
done
if ((${#bad[@]})); then
	die "not tidy: ${bad[*]}; run 'make tidy' and commit the result"
fi
