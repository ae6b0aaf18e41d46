#!/usr/bin/env bash
# Runs every fuzz target of the given modules for a short time each, from
# their seed corpus onward. Fails if a target fails, or if none is found.
# Usage: scripts/fuzz.sh FUZZTIME MODULE...
set -euo pipefail
source "$(dirname "$0")/lib.sh"

fuzztime=$1
shift
found=0
for m in "$@"; do
	while IFS= read -r file; do
		dir=$(dirname "$file")
		for fn in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$ROOT/$m/$file" | cut -d' ' -f2); do
			found=$((found + 1))
			echo "==> fuzz $m/${dir#./} $fn ($fuzztime)"
			(cd "$ROOT/$m" && go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$fuzztime" "./${dir#./}")
		done
	done < <(cd "$ROOT/$m" && grep -rl --include='*_test.go' -E '^func Fuzz' . || true)
done
((found > 0)) || die "no fuzz target found in: $*"
echo "fuzz: ran $found fuzz targets for $fuzztime each"
