#!/usr/bin/env bash
# go mod tidy for released modules (versions.yaml). They require their Shoal
# siblings at released versions and keep no replace, so `go mod tidy` (which
# ignores go.work) resolves the siblings from a file-system module proxy
# packed from this tree. The siblings' go.sum lines are dropped: they hash
# this tree's content, not the published release, and a workspace build does
# not read them.
# Usage: scripts/tidy-released.sh [--check] MODULE...  (--check: fail on a diff)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

check=false
[[ ${1:-} == --check ]] && check=true && shift
(($#)) || exit 0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-tidy.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
release_tool "$tmp/bin" "$ROOT"
"$tmp/bin/shoalrelease" pack -root "$ROOT" -out "$tmp/proxy"
user_env "$tmp/proxy"

bad=()
for m in "$@"; do
	# A copy, so a check leaves the tree alone (released modules have no
	# relative path in their go.mod, so a copy resolves the same).
	mkdir -p "$tmp/mod/$m"
	cp -r "$ROOT/$m/." "$tmp/mod/$m/"
	(cd "$tmp/mod/$m" && go mod tidy) || die "go mod tidy failed in $m (above)"
	sed -i '\#^github.com/shoalmesh/shoal/#d' "$tmp/mod/$m/go.sum"
	for f in go.mod go.sum; do
		if $check; then
			diff -u "$ROOT/$m/$f" "$tmp/mod/$m/$f" || bad+=("$m/$f")
		else
			cp "$tmp/mod/$m/$f" "$ROOT/$m/$f"
		fi
	done
done
if ((${#bad[@]})); then
	die "not tidy: ${bad[*]}; run 'make tidy' and commit the result"
fi
