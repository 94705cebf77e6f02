#!/usr/bin/env bash
# One version of each dependency across the workspace's modules: every
# module, built as released (GOWORK=off), must compile the same version of
# every module it shares with another. Without this, a module's own go.mod
# can lag behind (it did: golang.org/x/sync v0.22 beside v0.24), and a
# container build then runs code no test ran.
set -euo pipefail
# A failing go list inside $(...) must fail the script too.
shopt -s inherit_errexit
root=$(cd "$(dirname "$0")/.." && pwd)
list=$(for m in "$@"; do
  (cd "$root/$m" && GOWORK=off go list -deps -test \
    -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}' ./... |
    grep -v -e '^$' -e '^github.com/quickmatch-dev/quickmatch ' | sed "s|\$| $m|")
done | sort -u)
drift=$(awk '{ v[$1] = v[$1] " " $2 "(" $3 ")"; n[$1 " " $2] = 1 }
  END { for (k in n) { split(k, f, " "); c[f[1]]++ }
        for (p in c) if (c[p] > 1) print p ":" v[p] }' <<<"$list" | sort)
if [[ -n "$drift" ]]; then
  echo "modules compile different versions of a dependency (raise the lower ones with go get in that module):" >&2
  echo "$drift" >&2
  exit 1
fi
