#!/usr/bin/env bash
# Prints the release notes of VERSION in Markdown: for every release set at
# VERSION in versions.yaml (or only SET), how to get it and the commits that
# touched its directory since its previous tag.
# Usage: scripts/release-notes.sh VERSION [SET]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
version=${1:?usage: scripts/release-notes.sh VERSION [SET]}
only=${2:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-notes.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$ROOT/tools/release" && GOWORK=off go build -o "$tmp/shoalrelease" .)

printf '# Shoal %s\n\n' "$version"
while read -r name v prev; do
	[[ $v == "$version" ]] || continue
	[[ -z $only || $only == "$name" ]] || continue
	printf '## %s %s\n\n' "$name" "$v"
	if [[ $name == cli ]]; then
		printf '    go install github.com/shoalmesh/shoal/cli/cmd/shoal@%s\n\n' "$v"
	else
		printf '    go get github.com/shoalmesh/shoal/%s@%s\n\n' "$name" "$v"
	fi
	range=HEAD
	if [[ $prev == none ]]; then
		printf 'First release.\n\n'
	else
		printf 'Changes since %s:\n\n' "$prev"
		range=$name/$prev..HEAD
	fi
	git -C "$ROOT" log --no-merges --format='- %s (%h)' "$range" -- "$name" | head -200
	printf '\n'
done < <("$tmp/shoalrelease" previous -root "$ROOT")
