#!/usr/bin/env bash
# Makes a Docker-compatible container API available for testcontainers-go:
# podman (Debian) with runc, as a Docker API socket. Idempotent and quiet
# when the socket already answers.
#
# A machine that already has a working Docker (DOCKER_HOST, or
# /var/run/docker.sock answering) is left alone.
#
# Prints nothing on success; tests find the socket themselves (localmesh
# looks at DOCKER_HOST, then /run/podman/podman.sock, then Docker's default).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SOCK=${SHOAL_PODMAN_SOCKET:-/run/podman/podman.sock}

ping_socket() {
	curl -fsS --max-time 2 --unix-socket "$1" http://d/_ping >/dev/null 2>&1
}

if [[ -n ${DOCKER_HOST:-} ]]; then
	case $DOCKER_HOST in
	unix://*) ping_socket "${DOCKER_HOST#unix://}" && exit 0 ;;
	*) exit 0 ;; # a remote engine: trust the user's setup
	esac
fi
# A podman service started from a directory that was deleted since (a CI
# clone that is gone) still answers the socket, but every container it
# starts fails: conmon cannot get its working directory, and runc reports
# "write child: broken pipe". Such a service is stopped and started anew.
for pid in $(pgrep -f "podman system service .*unix://$SOCK" || true); do
	if [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == *" (deleted)" ]]; then
		log "deps: restarting podman's API service (its working directory was deleted)"
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
done
ping_socket "$SOCK" && exit 0
ping_socket /var/run/docker.sock && exit 0

# podman's default runtime here would be crun, which fails on this kernel's
# cgroup hybrid mode; runc works.
apt_install podman runc curl iptables

[[ $(id -u) == 0 ]] || die "podman needs to run as root here to serve $SOCK; run: sudo $0"

# Ulimits above the machine's hard limits make every container fail to start;
# keep podman's defaults within them. A drop-in leaves the admin's
# containers.conf untouched.
conf=/etc/containers/containers.conf.d/50-shoal.conf
want='[containers]
default_ulimits = ["nofile=16384:16384", "nproc=8192:8192"]
[engine]
runtime = "runc"'
if [[ ! -f $conf ]] || [[ $(cat "$conf") != "$want" ]]; then
	mkdir -p "$(dirname "$conf")"
	printf '%s\n' "$want" >"$conf"
fi

# Serve the Docker API. On a machine with systemd, the packaged socket unit
# does it; without systemd (containers, CI sandboxes), a detached service.
if [[ $SOCK == /run/podman/podman.sock ]] && command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
	systemctl enable --now podman.socket >/dev/null 2>&1 || true
fi
if ! ping_socket "$SOCK"; then
	log "deps: starting podman's Docker API on $SOCK"
	mkdir -p "$(dirname "$SOCK")"
	logf="$(cache_dir)/podman-service.log"
	# From /, so the service (and every conmon it starts) never sits in a
	# directory that goes away, such as this checkout.
	(cd / && setsid nohup podman system service --time=0 "unix://$SOCK" >"$logf" 2>&1 </dev/null &)
	for _ in $(seq 1 50); do
		ping_socket "$SOCK" && break
		sleep 0.2
	done
	ping_socket "$SOCK" || die "podman's API did not come up on $SOCK; see $logf"
fi

# A smoke test on a cold machine only: the runtime must really start a
# container (this is where crun or ulimit problems show).
stamp="$(cache_dir)/podman-ok"
if [[ ! -f $stamp ]]; then
	log "deps: checking that podman can run a container"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	cat >"$tmp/Dockerfile" <<-'EOF'
		FROM scratch
		COPY true /true
		ENTRYPOINT ["/true"]
	EOF
	# A static program that exits 0, built with the Go toolchain (no base
	# image can be pulled here).
	cat >"$tmp/main.go" <<-'EOF'
		package main

		func main() {}
	EOF
	(cd "$tmp" && printf 'module smoke\n\ngo 1.26\n' >go.mod && CGO_ENABLED=0 GOWORK=off GOFLAGS= go build -o true .)
	podman build -q -t localhost/shoal-smoke:1 "$tmp" >/dev/null
	podman run --rm localhost/shoal-smoke:1 || die "podman cannot run a container; check runc and $conf"
	podman rmi -f localhost/shoal-smoke:1 >/dev/null
	touch "$stamp"
fi
