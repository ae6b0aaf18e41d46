#!/usr/bin/env bash
# Releases the library modules and the CLI at one version:
#   1. refuses a dirty tree or a tag that exists;
#   2. sets versions.yaml and every Shoal require of the released modules to
#      VERSION (tools/release bump), tidies, syncs go.work, commits;
#   3. runs scripts/release-check.sh on that commit (packs, installs, runs,
#      gorelease against the previous tags);
#   4. tags <dir>/VERSION in dependency order (triple, sdk, router-mesh,
#      registry-istio, localmesh, cli) and writes the notes: per module, the
#      commits that touched it since its previous tag.
# With --dry-run it does all of that in a temporary worktree, prints the
# tags it would make and the notes, and leaves this checkout and its tags alone.
# Usage: scripts/release.sh [--dry-run] VERSION [SET...]   (default: every set)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

dry=false
[[ ${1:-} == --dry-run ]] && dry=true && shift
version=${1:-}
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
	die "usage: make release VERSION=vX.Y.Z [DRY_RUN=1] (got '${version}')"
shift
only=$(
	IFS=,
	echo "$*"
)

[[ -z $(git status --porcelain) ]] ||
	die "the tree has uncommitted changes (git status); a release is made from a clean commit: commit or stash them first"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-release.XXXXXX")
work=$ROOT
cleanup() {
	if $dry && [[ $work != "$ROOT" ]]; then git -C "$ROOT" worktree remove --force "$work" >/dev/null 2>&1 || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
if $dry; then
	work=$tmp/tree
	git worktree add --quiet --detach "$work" HEAD
	log "release: dry run in a temporary worktree ($work)"
fi

release_tool "$tmp/bin" "$work"
tool=$tmp/bin/shoalrelease
mapfile -t before < <("$tool" sets -root "$work")
"$tool" bump -root "$work" -version "$version" ${only:+-sets "$only"}
# The install lines of the docs follow (go get .../sdk@vX.Y.Z).
for s in "${before[@]}"; do
	name=${s% *} old=${s#* }
	new=$("$tool" sets -root "$work" | awk -v n="$name" '$1 == n {print $2}')
	[[ $new == "$old" ]] && continue
	git -C "$work" ls-files -z '*.md' | (cd "$work" && xargs -0 -r sed -i -E \
		"s#(github\.com/shoalmesh/shoal/$name(/[A-Za-z0-9_./-]*)?@)${old//./\\.}([^0-9.]|\$)#\1$new\3#g")
done
mapfile -t sets < <("$tool" sets -root "$work")
tags=()
for s in "${sets[@]}"; do
	name=${s% *} v=${s#* }
	[[ $v == "$version" ]] || continue
	git -C "$ROOT" rev-parse -q --verify "refs/tags/$name/$v" >/dev/null &&
		die "tag $name/$v exists already; pick a newer VERSION"
	tags+=("$name/$v")
done

log "release: tidy the released modules, sync go.work"
mapfile -t released < <(for s in "${sets[@]}"; do echo "${s% *}"; done)
"$work/scripts/tidy-released.sh" "${released[@]}"
"$work/scripts/update-workspace.sh"
git -C "$work" add -A
git -C "$work" commit --quiet -m "release: ${tags[*]}"

log "release: release-check on the release commit"
"$work/scripts/release-check.sh"

notes=$ROOT/.cache/release/notes-$version.md
mkdir -p "$(dirname "$notes")"
"$work/scripts/release-notes.sh" "$version" >"$notes"
cat "$notes"

if $dry; then
	log "release: dry run done. It would tag, in this order: ${tags[*]}"
	log "release: notes in $notes"
	exit 0
fi
for t in "${tags[@]}"; do git tag -a "$t" -m "${t%/*} ${t##*/}"; done
log "release: tagged ${tags[*]} on $(git rev-parse --short HEAD); notes in $notes"
log "release: publish with: git push origin HEAD ${tags[*]}"
