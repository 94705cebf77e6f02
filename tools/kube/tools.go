//go:build tools

// Package kube pins the Kubernetes control plane the tests run: this
// module builds kube-apiserver, kube-controller-manager, kube-scheduler
// v1.36.3 and etcd v3.6.8 (a tool of go.mod) from the module proxy
// (build.sh), since no binary can be downloaded here. It is not in go.work.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
