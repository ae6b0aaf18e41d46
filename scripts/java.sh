#!/usr/bin/env bash
# Builds what the interop suite needs from Java: the Dubbo samples' jar.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/samples/java/build.sh" >/dev/null
