# Shared helpers for scripts/*.sh. Source it; do not run it.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROOT

# Quiet on a warm machine, informative on a cold one.
log() { printf '%s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# apt_install installs Debian packages that are missing, and only those.
apt_install() {
	local missing=()
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	[[ $(id -u) == 0 ]] || die "missing packages ${missing[*]}: run as root or install them: sudo apt-get install -y ${missing[*]}"
	log "deps: installing ${missing[*]} (apt)"
	local stamp=/var/lib/apt/periodic/shoal-update-stamp
	if [[ ! -f $stamp ]] || [[ -n $(find "$stamp" -mmin +1440 2>/dev/null) ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
		mkdir -p "$(dirname "$stamp")" && touch "$stamp"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# cache_dir is where machine-wide build caches live (outside the checkout).
cache_dir() {
	local d="${XDG_CACHE_HOME:-$HOME/.cache}/shoal"
	mkdir -p "$d"
	printf '%s\n' "$d"
}

# in_workspace tells whether a module directory (relative to ROOT) is one of
# go.work's modules. The others (tools/*, interop/dubbogo) are built with
# GOWORK=off so that their dependencies never reach the workspace.
in_workspace() {
	grep -qx "[[:space:]]*\./$1" "$ROOT/go.work"
}

# user_env PROXY exports the environment of a user's build for the modules
# packed into the file-system module proxy PROXY (tools/release pack): no
# workspace, no sum database for Shoal's modules, and a module cache of its
# own, so the packed versions never reach the machine's cache (each pack puts
# new content under the same version: they are dropped first). The machine's
# cache directory serves every other module, so a warm run downloads nothing.
user_env() {
	local upstream machine_cache modcache
	upstream=$(go env GOPROXY)
	machine_cache=$(go env GOMODCACHE)/cache/download
	modcache=$(cache_dir)/release-check-modcache
	# One user of that cache at a time, until this shell exits.
	exec 9>"$modcache.lock"
	flock 9
	chmod -R u+w "$modcache/github.com/shoalmesh" "$modcache/cache/download/github.com/shoalmesh" 2>/dev/null || true
	rm -rf "$modcache/github.com/shoalmesh" "$modcache/cache/download/github.com/shoalmesh"
	export GOWORK=off
	export GOFLAGS="-mod=mod -buildvcs=false"
	export GOMODCACHE=$modcache
	export GOPROXY="file://$1,file://$machine_cache,$upstream"
	export GONOSUMDB="github.com/shoalmesh/*"
	export GOPRIVATE= GONOPROXY=
	# The go command's module index (in GOCACHE) takes module@version as
	# immutable; a pack puts new content under the same version, and a stale
	# index then misses imports the new files have. Do without it.
	export GODEBUG=goindex=0
}

# release_tool builds tools/release (its own module, outside go.work) into
# DIR/shoalrelease, and gorelease into DIR/gorelease, from the tree at ROOT.
release_tool() {
	(cd "$2/tools/release" && GOWORK=off go build -o "$1/shoalrelease" . &&
		GOWORK=off go build -o "$1/gorelease" golang.org/x/exp/cmd/gorelease)
}
