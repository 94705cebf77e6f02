//go:build tools

// Package kwok pins sigs.k8s.io/kwok, which fakes the nodes and pods of the
// local control plane that `helm install --wait` runs against in the chart
// tests (tools/kube/build.sh builds it into bin/kube). It is not in go.work.
package kwok

import _ "sigs.k8s.io/kwok/cmd/kwok"
