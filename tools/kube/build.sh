#!/usr/bin/env bash
# Builds the control plane the Kubernetes tests run on, into bin/kube:
# kube-apiserver, kube-controller-manager and kube-scheduler v1.36.3 and
# etcd v3.6.8 from the module proxy (no binary can be downloaded here),
# and kwok v0.8.0 (tools/kwok), which fakes nodes and
# pods so that `helm install --wait` completes. envtest finds the apiserver
# and etcd through KUBEBUILDER_ASSETS; the chart tests start the rest.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/bin/kube
mkdir -p "$out"
ldflags="-X k8s.io/component-base/version.gitVersion=v1.36.3"
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  if [ ! -x "$out/$cmd" ]; then
    (cd "$root/tools/kube" && GOWORK=off GOFLAGS=-mod=mod go build -tags tools \
      -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd")
  fi
done
if [ ! -x "$out/kwok" ]; then
  (cd "$root/tools/kwok" && GOWORK=off GOFLAGS=-mod=mod go build -tags tools -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok)
fi
# etcd 3.6 (not Debian's 3.4): the apiserver serves streaming watch lists
# only on an etcd that answers progress requests; on 3.4 the controllers'
# and kwok's watches keep breaking and a pod change can take a minute to be
# seen.
if [ ! -x "$out/etcd" ] || [ -L "$out/etcd" ]; then
  rm -f "$out/etcd"
  (cd "$root/tools/kube" && GOWORK=off GOFLAGS=-mod=mod go build -o "$out/etcd" go.etcd.io/etcd/server/v3)
fi
"$out/kube-apiserver" --version
# No pipe into head: under pipefail, etcd can die of SIGPIPE and fail the build.
etcd_version=$("$out/etcd" --version)
echo "${etcd_version%%$'\n'*}"
