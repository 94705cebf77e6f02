#!/usr/bin/env bash
# quickmatch on a local kind cluster, the way it runs in production:
# Agones (its Helm chart), NATS with JetStream (the official NATS chart),
# our images built from the Dockerfiles, and our chart.
#
#   deploy/kind/kind.sh up      create it all, then print the URL to open
#   deploy/kind/kind.sh down    delete the cluster
#
# Needs docker, kind, kubectl and helm on the PATH. Settings, from the
# environment: CLUSTER (quickmatch), AGONES_VERSION (1.60.0), NATS_CHART_VERSION
# (empty: the newest), FRONTEND_PORT (3000, on this machine).
#
# Players' browsers reach game servers at their node's address and a port
# of 7000-7009, which the cluster publishes on this machine; on Linux the
# node's address is reachable as is (Docker Desktop users: use localhost).
set -euo pipefail

CLUSTER=${CLUSTER:-quickmatch}
AGONES_VERSION=${AGONES_VERSION:-1.60.0}
NATS_CHART_VERSION=${NATS_CHART_VERSION:-}
FRONTEND_PORT=${FRONTEND_PORT:-3000}
NAMESPACE=quickmatch
GAME_PORTS=(7000 7001 7002 7003 7004 7005 7006 7007 7008 7009)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { printf '\n== %s\n' "$*"; }

need() {
  local missing=()
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "missing: ${missing[*]} (install them, then run again)" >&2
    exit 1
  fi
}

kind_config() {
  cat <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: 30000
        hostPort: ${FRONTEND_PORT}
        protocol: TCP
YAML
  for port in "${GAME_PORTS[@]}"; do
    printf '      - containerPort: %s\n        hostPort: %s\n        protocol: TCP\n' "$port" "$port"
  done
}

up() {
  need docker kind kubectl helm openssl
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "cluster $CLUSTER exists; reusing it"
  else
    log "creating kind cluster $CLUSTER"
    kind_config | kind create cluster --name "$CLUSTER" --config -
  fi
  kubectl config use-context "kind-$CLUSTER" >/dev/null

  log "installing Agones $AGONES_VERSION"
  helm repo add agones https://agones.dev/chart/stable >/dev/null
  helm repo add nats https://nats-io.github.io/k8s/helm/charts/ >/dev/null
  helm repo update >/dev/null
  helm upgrade --install agones agones/agones --version "$AGONES_VERSION" \
    --namespace agones-system --create-namespace \
    --set "gameservers.namespaces={$NAMESPACE}" \
    --set gameservers.minPort="${GAME_PORTS[0]}" --set gameservers.maxPort="${GAME_PORTS[-1]}" \
    --set agones.ping.install=false --set agones.allocator.install=true \
    --wait --timeout 10m

  log "installing NATS with JetStream"
  local nats_version=()
  if [ -n "$NATS_CHART_VERSION" ]; then nats_version=(--version "$NATS_CHART_VERSION"); fi
  helm upgrade --install nats nats/nats "${nats_version[@]}" --namespace nats --create-namespace \
    --set config.jetstream.enabled=true \
    --set config.jetstream.fileStore.pvc.size=1Gi \
    --wait --timeout 5m

  log "building and loading the images"
  for svc in frontend matcher allocator game; do
    docker build -f "$ROOT/services/$svc/Dockerfile" -t "quickmatch/$svc:dev" "$ROOT"
    kind load docker-image --name "$CLUSTER" "quickmatch/$svc:dev"
  done

  log "installing quickmatch"
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
  if ! kubectl get secret -n "$NAMESPACE" quickmatch-join >/dev/null 2>&1; then
    kubectl create secret generic -n "$NAMESPACE" quickmatch-join --from-literal=join-secret="$(openssl rand -hex 32)"
  fi
  helm upgrade --install quickmatch "$ROOT/deploy/helm/quickmatch" --namespace "$NAMESPACE" \
    --set image.registry=quickmatch --set image.tag=dev --set image.pullPolicy=Never \
    --set nats.url=nats://nats.nats.svc:4222 --set nats.streamReplicas=1 \
    --set joinSecret.existingSecret=quickmatch-join \
    --set frontend.service.type=NodePort --set frontend.service.nodePort=30000 \
    --set matcher.autoscaling.enabled=false --set matcher.replicas=2 \
    --set gameServers.replicas=2 --set gameServers.autoscaler.policy=Webhook \
    --set networkPolicy.enabled=false \
    --wait --timeout 5m
  helm test quickmatch --namespace "$NAMESPACE"

  log "ready: open http://localhost:${FRONTEND_PORT} in two browser tabs"
}

down() {
  need kind
  log "deleting kind cluster $CLUSTER"
  kind delete cluster --name "$CLUSTER"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
