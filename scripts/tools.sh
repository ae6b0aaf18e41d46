#!/usr/bin/env bash
# Builds the pinned developer tools (tools/lint, tools/proto, tools/grpcurl,
# tools/h2spec, tools/buf, tools/helm) into .cache/bin.
# Idempotent: a tool is rebuilt only when its tools module changes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.cache/bin"
mkdir -p "$bin"
export GOWORK=off GOFLAGS=-buildvcs=false

build() { # module-dir package binary-name
	local dir=$1 pkg=$2 name=$3
	local stamp="$bin/.$name.stamp"
	local want
	want=$(cat "$root/tools/$dir/go.mod" "$root/tools/$dir/go.sum" | sha256sum | cut -c1-16)
	if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
		return 0
	fi
	echo "tools: building $name (pinned in tools/$dir/go.mod)" >&2
	(cd "$root/tools/$dir" && go build -trimpath -o "$bin/$name" "$pkg")
	echo "$want" >"$stamp"
}

want_all=${*:-golangci-lint gofumpt goimports govulncheck protoc-gen-go protoc-gen-go-grpc grpcurl h2spec}
for t in $want_all; do
	case $t in
	golangci-lint) build lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint golangci-lint ;;
	gofumpt) build lint mvdan.cc/gofumpt gofumpt ;;
	goimports) build lint golang.org/x/tools/cmd/goimports goimports ;;
	govulncheck) build lint golang.org/x/vuln/cmd/govulncheck govulncheck ;;
	protoc-gen-go) build proto google.golang.org/protobuf/cmd/protoc-gen-go protoc-gen-go ;;
	protoc-gen-go-grpc) build proto google.golang.org/grpc/cmd/protoc-gen-go-grpc protoc-gen-go-grpc ;;
	grpcurl) build grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl grpcurl ;;
	h2spec) build h2spec github.com/summerwind/h2spec/cmd/h2spec h2spec ;;
	buf) build buf github.com/bufbuild/buf/cmd/buf buf ;;
	helm) build helm helm.sh/helm/v4/cmd/helm helm ;;
	*)
		echo "tools: unknown tool $t" >&2
		exit 2
		;;
	esac
done
