#!/usr/bin/env bash
# Builds the control plane the Kubernetes tests run on, into bin/kube:
# kube-apiserver v1.36.3 from the module proxy, and etcd from Debian's
# etcd-server package. envtest finds both through KUBEBUILDER_ASSETS.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/bin/kube
mkdir -p "$out"
if [ ! -x "$out/kube-apiserver" ]; then
  (cd "$root/tools/kube" && GOWORK=off GOFLAGS=-mod=mod go build -tags tools \
    -ldflags "-X k8s.io/component-base/version.gitVersion=v1.36.3" \
    -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
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
"$out/etcd" --version | head -1
