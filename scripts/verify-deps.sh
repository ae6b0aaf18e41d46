#!/usr/bin/env bash
# Fails if two modules directly require different versions of the same
# dependency (etcd's dependency check): one version of each direct dependency
# across the repository. Indirect requirements follow from these.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

for m in "$@"; do
	(cd "$ROOT/$m" && go mod edit -json) |
		python3 -c '
import json, sys
mod = json.load(sys.stdin)
for r in mod.get("Require") or []:
    if not r.get("Indirect") and not r["Path"].startswith("github.com/shoalmesh/shoal/"):
        print(r["Path"], r["Version"], sys.argv[1])
' "$m"
done | sort | awk '
{ if ($1 in ver && ver[$1] != $2) { printf "%s: %s in %s, %s in %s\n", $1, ver[$1], where[$1], $2, $3; bad = 1 }
  ver[$1] = $2; where[$1] = $3 }
END { if (bad) { print "error: modules disagree on dependency versions; align them (go get dep@version in each module)" > "/dev/stderr"; exit 1 } }'
