#!/usr/bin/env bash
# A release dry run that a user's build would pass. It
#   1. fails when a released module (versions.yaml) keeps a replace or requires
#      a Shoal module at a version versions.yaml does not release, naming the
#      module and the requirement, or when a doc's install line names another
#      version;
#   2. packs every released module at its versions.yaml version into a
#      file-system module proxy (golang.org/x/mod/zip, tools/release);
#   3. outside the repository, with GOWORK=off and that proxy in front of the
#      usual one, as a user would: installs the shoal CLI and
#      protoc-gen-go-triple, builds every package of every released module,
#      builds a copy of samples/go/helloworld whose go.mod requires only
#      released versions and makes its provider and consumer talk on loopback,
#      builds and tests an application the installed `shoal new` makes,
#      checks that the installed `shoal dev` carries the control-plane pins
#      (`shoal dev build` finds this machine's build up to date, no go
#      command needed: no rebuild),
#      and checks a module requiring only triple (a service on well-known
#      types, generated, served and called) pulls no sdk, registry-istio or fx;
#   4. runs gorelease against each module's previous release tag, if any.
# Usage: scripts/release-check.sh [ROOT]  (ROOT defaults to this repository;
# tools/release's tests run it on a modified copy to see it fail).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root=$(cd "${1:-$ROOT}" && pwd)
cd "$root"
start=$SECONDS

scratch=$(mktemp -d "${TMPDIR:-/tmp}/shoal-release-check.XXXXXX")
cleanup() {
	[[ -n ${server_pid:-} ]] && kill "$server_pid" 2>/dev/null
	chmod -R u+w "$scratch" 2>/dev/null || true
	rm -rf "$scratch"
}
trap cleanup EXIT

# The release tool and gorelease, built from their own pinned module.
release_tool "$scratch/bin" "$root"
tool=$scratch/bin/shoalrelease
gorelease=$scratch/bin/gorelease

log "==> release-check: go.mod of released modules"
"$tool" check -root "$root"

log "==> release-check: packing released modules into a file-system module proxy"
"$tool" pack -root "$root" -out "$scratch/proxy"
mapfile -t sets < <("$tool" sets -root "$root")
declare -A version
for s in "${sets[@]}"; do version[${s% *}]=${s#* }; done

# A user's environment: no workspace, no replace, modules from that proxy.
user_env "$scratch/proxy"
export GOBIN=$scratch/bin
repo=github.com/shoalmesh/shoal

log "==> release-check: go install cli/cmd/shoal@${version[cli]} and triple/cmd/protoc-gen-go-triple@${version[triple]}"
(cd "$scratch" && go install "$repo/cli/cmd/shoal@${version[cli]}")
(cd "$scratch" && go install "$repo/triple/cmd/protoc-gen-go-triple@${version[triple]}")
"$GOBIN/shoal" help >/dev/null || die "the installed shoal CLI does not run: $GOBIN/shoal help failed"
got=$("$GOBIN/protoc-gen-go-triple" --version)
[[ $got == "protoc-gen-go-triple ${version[triple]}" ]] ||
	die "the installed protoc-gen-go-triple reports '$got', want version ${version[triple]}"
log "$got"

log "==> release-check: the installed shoal carries the control-plane pins (shoal dev, no checkout)"
help=$(cd "$scratch" && "$GOBIN/shoal" dev up --help) || die "the installed shoal: shoal dev up --help failed"
grep -q 'shoal dev up' <<<"$help" || die "the installed shoal: shoal dev up --help does not describe it:"$'\n'"$help"
# The machine's build (make deps: scripts/controlplane.sh, the same builder
# from the tree) must be what the installed binary's pins select: --check
# builds nothing, and a build with no go command on PATH needs none.
cp_dir=${SHOAL_CONTROLPLANE_DIR:-$(cache_dir)/controlplane}
out=$(cd "$scratch" && SHOAL_CONTROLPLANE_DIR=$cp_dir "$GOBIN/shoal" dev build --check 2>&1) ||
	die "the installed shoal finds the control plane in $cp_dir out of date (make deps not run, or its pins differ from the tree's):"$'\n'"$out"
out=$(cd "$scratch" && PATH=/nonexistent SHOAL_CONTROLPLANE_DIR=$cp_dir "$GOBIN/shoal" dev build 2>&1) ||
	die "the installed shoal would rebuild the control plane in $cp_dir:"$'\n'"$out"
[[ $out == "control plane up to date in $cp_dir" ]] ||
	die "the installed shoal's dev build printed more than that it is up to date (a rebuild?):"$'\n'"$out"
log "shoal dev: the installed binary's pins match the machine's control-plane build in $cp_dir (no rebuild)"

# newmod DIR REQUIRES... makes a module outside the repository requiring only
# released versions of the given sets.
newmod() {
	local d=$1
	shift
	mkdir -p "$d"
	(
		cd "$d"
		go mod init "example.com/$(basename "$d")" 2>/dev/null
		local s
		for s in "$@"; do go mod edit -require="$repo/$s@${version[$s]}"; done
	)
}

log "==> release-check: every package of every released module builds as a dependency"
pkgs=()
for s in "${!version[@]}"; do pkgs+=("$repo/$s/..."); done
newmod "$scratch/all" "${!version[@]}"
(cd "$scratch/all" && go build "${pkgs[@]}")

log "==> release-check: samples/go/helloworld, copied outside the repository"
hw=$scratch/helloworld
newmod "$hw" sdk triple
cp -r "$root/samples/go/helloworld/server" "$root/samples/go/helloworld/client" "$hw/"
# The sample's messages come from the unreleased proto module: generate them
# here with protoc and the protoc-gen-go-triple just installed.
# protoc from Debian; the well-known types (google/protobuf/*.proto) come
# from libprotobuf-dev, protobuf-compiler alone lacks them.
apt_install protobuf-compiler libprotobuf-dev
protobuf=$(cd "$root/triple" && go mod edit -json | python3 -c 'import json,sys; print(next(r["Version"] for r in json.load(sys.stdin)["Require"] if r["Path"]=="google.golang.org/protobuf"))')
(cd "$scratch" && go install "google.golang.org/protobuf/cmd/protoc-gen-go@$protobuf")
mkdir -p "$hw/greet"
cp "$root/proto/greet/greet.proto" "$hw/greet/"
pkg=example.com/helloworld/greet
(cd "$hw/greet" && PATH=$GOBIN:$PATH protoc -I . \
	--go_out=. --go_opt=paths=source_relative,Mgreet.proto=$pkg \
	--go-triple_out=. --go-triple_opt=paths=source_relative,Mgreet.proto=$pkg greet.proto)
grep -rl "$repo/proto/greet" "$hw/server" "$hw/client" | xargs sed -i "s#$repo/proto/greet#$pkg#g"
(cd "$hw" && go mod tidy && go build -o "$scratch/bin/hw-server" ./server && go build -o "$scratch/bin/hw-client" ./client)
if (cd "$hw" && go list -m all | grep "^$repo/" | grep -v -e "^$repo/sdk ${version[sdk]}\$" -e "^$repo/triple ${version[triple]}\$"); then
	die "helloworld copy resolved a Shoal module at a version that is not released (above)"
fi
mkdir -p "$scratch/run"
srv_log=$scratch/run/server.log
TMPDIR=$scratch/run SHOAL_PROTOCOLS_0_PORT=0 SHOAL_PROTOCOLS_0_HOST=127.0.0.1 SHOAL_LOGGING_LEVEL=warn \
	timeout 120 "$scratch/bin/hw-server" >"$srv_log" 2>&1 &
server_pid=$!
if ! out=$(TMPDIR=$scratch/run SHOAL_LOGGING_LEVEL=warn timeout 60 "$scratch/bin/hw-client" -name Release -n 3 -wait 20s 2>&1); then
	printf '%s\nserver:\n%s\n' "$out" "$(cat "$srv_log")" >&2
	die "helloworld client built from released modules failed to call the server"
fi
unary=$(grep -c '^Hello, Release (served by helloworld-server@' <<<"$out" || true)
((unary == 3)) || die "helloworld client printed $unary unary greetings, want 3:"$'\n'"$out"
kill -TERM "$server_pid"
wait "$server_pid" || die "helloworld server exited with status $? after SIGTERM:"$'\n'"$(cat "$srv_log")"
server_pid=
log "helloworld provider and consumer talked: $unary unary calls and a server stream"

log "==> release-check: an application made by the installed shoal new (no checkout)"
(cd "$scratch" && PATH=$GOBIN:$PATH timeout 300 "$GOBIN/shoal" new demoapp --dir "$scratch/demoapp")
if bad=$(cd "$scratch/demoapp" && grep -n -e '^replace' -e "$repo/.* v0\.0\.0-" go.mod); then
	die "shoal new (released) wrote a go.mod that needs this checkout:"$'\n'"$bad"
fi
(cd "$scratch/demoapp" && go build ./... && go test ./...)
log "shoal new: the app requires the released sdk and triple, builds and passes its tests"

log "==> release-check: a module requiring only triple"
to=$scratch/tripleonly
newmod "$to" triple
# A service on well-known types, generated as the triple README says, served
# and called on loopback.
mkdir -p "$to/clock"
cat >"$to/clock/clock.proto" <<'EOF'
syntax = "proto3";
package clock;
import "google/protobuf/empty.proto";
import "google/protobuf/timestamp.proto";
option go_package = "example.com/tripleonly/clock";
service Clock {
  rpc Now(google.protobuf.Empty) returns (google.protobuf.Timestamp);
}
EOF
(cd "$to/clock" && PATH=$GOBIN:$PATH protoc -I . --go_out=. --go_opt=paths=source_relative \
	--go-triple_out=. --go-triple_opt=paths=source_relative clock.proto)
cat >"$to/main.go" <<'EOF'
// Command tripleonly serves and calls a Triple service with triple alone.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"example.com/tripleonly/clock/clocktriple"
	"github.com/shoalmesh/shoal/triple"
)

type clock struct{ clocktriple.UnimplementedClockHandler }

func (clock) Now(context.Context, *emptypb.Empty) (*timestamppb.Timestamp, error) {
	return timestamppb.Now(), nil
}

func main() {
	srv := triple.NewServer()
	if err := clocktriple.RegisterClockHandler(srv, clock{}); err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis) //nolint:errcheck // ends with Shutdown
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	defer srv.Shutdown(ctx) //nolint:errcheck // best effort on exit
	cc, err := triple.Dial(lis.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	now, err := clocktriple.NewClockClient(cc).Now(ctx, &emptypb.Empty{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("triple alone: Clock.Now answered", now.AsTime().Format(time.RFC3339))
}
EOF
(cd "$to" && go mod tidy && go build -o "$scratch/bin/tripleonly" . && timeout 60 "$scratch/bin/tripleonly")
if graph=$(cd "$to" && go mod graph | grep -E "(^|[[:space:]])($repo/(sdk|registry-istio|router-mesh|observability|localmesh|cli)|go\.uber\.org/fx)@"); then
	die "a module requiring only triple pulls modules it must not:"$'\n'"$graph"
fi
log "triple alone pulls no sdk, registry-istio or fx"

log "==> release-check: API compatibility (gorelease)"
while read -r name v prev; do
	if [[ $prev == none ]]; then
		log "gorelease $name: no release before $v (no tag $name/v* older than it): nothing to compare; $v is its first release"
		continue
	fi
	# A proxy with the earlier tags of $name but not $v: gorelease compares
	# against the newest version it can see. One module cache for all of
	# them: in dependency order, $name@$v is fetched only after its own check.
	"$tool" pack -root "$root" -out "$scratch/proxy-$name" -without "$name"
	log "gorelease $name: $prev -> $v"
	(
		export GOPROXY="file://$scratch/proxy-$name,${GOPROXY#*,}" GOMODCACHE=$scratch/modcache-gorelease
		# A copy with the siblings' go.sum lines, which the tree leaves out
		# (scripts/tidy-released.sh); gorelease reports missing sums.
		mkdir -p "$scratch/gorelease/$name"
		cp -r "$root/$name/." "$scratch/gorelease/$name/"
		cd "$scratch/gorelease/$name"
		go mod tidy
		# The report and the version it suggests, then whether $v is valid.
		"$gorelease" -base="$prev" || true
		"$gorelease" -base="$prev" -version="$v" >/dev/null ||
			die "gorelease: $name $v is not a valid next version after $prev; set the suggested version (above) in versions.yaml"
	)
done < <("$tool" previous -root "$root")

log "release-check ok in $((SECONDS - start))s"
