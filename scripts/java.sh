#!/usr/bin/env bash
# Builds what the interop suite and the demo need from Java: a JDK 17 with
# jlink (for the Java runtime image), Maven, and the Dubbo samples' jar.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
if ! command -v jlink >/dev/null || ! command -v mvn >/dev/null; then
	apt_install openjdk-17-jdk-headless maven
fi
"$ROOT/samples/java/build.sh" >/dev/null
