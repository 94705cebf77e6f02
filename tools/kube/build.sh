#!/usr/bin/env bash
# Builds the control plane the Kubernetes tests run on, into bin/kube:
# kube-apiserver, kube-controller-manager and kube-scheduler v1.36.3 from the
# module proxy (no binary can be downloaded here), etcd from Debian's
# etcd-server package, and kwok v0.8.0 (tools/kwok), which fakes nodes and
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
if [ ! -x "$out/etcd" ]; then
  if ! command -v etcd >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
    else
      echo "etcd missing: apt-get install etcd-server" >&2; exit 1
    fi
  fi
  ln -sf "$(command -v etcd)" "$out/etcd"
fi
"$out/kube-apiserver" --version
# No pipe into head: under pipefail, etcd can die of SIGPIPE and fail the build.
etcd_version=$("$out/etcd" --version)
echo "${etcd_version%%$'\n'*}"
