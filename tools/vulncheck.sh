#!/usr/bin/env bash
# govulncheck (pinned in tools/go.mod) over every module, as released
# (GOWORK=off): fails when a known vulnerability is reachable from our
# code. VULNDB picks the database (default https://vuln.go.dev; a
# file:// URL for a local copy).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
db=${VULNDB:-https://vuln.go.dev}
status=0
for m in "$@"; do
  echo "== govulncheck $m"
  (cd "$root/$m" && GOWORK=off "$root/bin/govulncheck" -db "$db" ./...) || status=1
done
exit "$status"
