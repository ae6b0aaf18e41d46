#!/usr/bin/env bash
# Runs the Go tests of one module and fails when the module ran no test at all
# (an empty run proves nothing). Usage: scripts/test-module.sh MODULE [go test flags...]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

module=$1
shift
cd "$ROOT/$module"
in_workspace "$module" || export GOWORK=off
log_file=$(mktemp)
trap 'rm -f "$log_file"' EXIT
status=0
go test "$@" ./... 2>&1 | tee "$log_file" || status=$?
if ((status != 0)); then
	exit "$status"
fi
if ! grep -qE '^ok[[:space:]]' "$log_file"; then
	die "module $module ran no test; every module needs at least one real test"
fi
