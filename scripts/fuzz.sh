#!/usr/bin/env bash
# Runs every fuzz target of the given modules for a short time each.
# Usage: scripts/fuzz.sh FUZZTIME MODULE...
set -euo pipefail
source "$(dirname "$0")/lib.sh"

fuzztime=$1
shift
found=0
for m in "$@"; do
	while IFS= read -r file; do
		dir=$(dirname "$file")
		for fn in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | cut -d' ' -f2); do
			found=$((found + 1))
			echo "==> fuzz $m/${dir#./} $fn ($fuzztime)"
			(cd "$ROOT/$m" && go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$fuzztime" "./${dir#./}")
		done
	done < <(cd "$ROOT/$m" && grep -rl --include='*_test.go' -E '^func Fuzz' . || true)
done
echo "fuzz: ran $found fuzz targets"
