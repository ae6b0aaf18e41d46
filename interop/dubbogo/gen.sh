#!/usr/bin/env bash
# Regenerates the greet package of this module from proto/greet/greet.proto,
# the one proto file every Shoal peer shares, with the generators pinned in
# tools/go.mod (built with GOWORK=off into .cache/bin/dubbogo):
#   greet.pb.go         protoc-gen-go v1.34.2, the protobuf runtime dubbo-go v3.3.2 uses
#   greet_triple.pb.go  protoc-gen-go-triple of github.com/dubbogo/tools v1.0.9, the
#                       legacy stubs for github.com/dubbogo/triple (dubbo-go 3.0 style)
# protoc comes from Debian's protobuf-compiler. With --check it fails when the
# committed files differ from a fresh generation.
# greettriple/ holds dubbo-go 3.3's own bindings; see greettriple/doc.go for
# why they are written by hand.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="$root/.cache/bin/dubbogo"
export GOWORK=off GOFLAGS=-buildvcs=false

check=false
[[ ${1:-} == --check ]] && check=true

command -v protoc >/dev/null || {
	echo "gen.sh: protoc is missing: apt-get install -y protobuf-compiler" >&2
	exit 1
}
mkdir -p "$bin"
(cd "$here/tools" && go build -trimpath -o "$bin/" \
	google.golang.org/protobuf/cmd/protoc-gen-go \
	github.com/dubbogo/tools/cmd/protoc-gen-go-triple)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pkg=github.com/shoalmesh/shoal/interop/dubbogo/greet
PATH="$bin:$PATH" protoc -I "$root/proto" \
	--go_out="$out" --go_opt=paths=source_relative --go_opt="Mgreet/greet.proto=$pkg;greet" \
	--go-triple_out="$out" --go-triple_opt=paths=source_relative --go-triple_opt="Mgreet/greet.proto=$pkg;greet" \
	greet/greet.proto

if $check; then
	for f in greet.pb.go greet_triple.pb.go; do
		if ! diff -u "$here/greet/$f" "$out/greet/$f"; then
			echo "gen.sh: interop/dubbogo/greet/$f is out of date: run interop/dubbogo/gen.sh and commit it" >&2
			exit 1
		fi
	done
else
	cp "$out/greet/greet.pb.go" "$out/greet/greet_triple.pb.go" "$here/greet/"
fi
