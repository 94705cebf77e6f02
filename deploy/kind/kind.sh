#!/usr/bin/env bash
# quickmatch on a local kind cluster, the way it runs in production:
# Agones (its Helm chart), NATS with JetStream (the official NATS chart),
# our images built from the Dockerfile (one target per service), and our chart.
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

# NATS_USERS are the users of deploy/nats/nats.conf: one per service, the
# provisioning Job's, and the operator's (people at the nats CLI).
NATS_USERS=(frontend matcher allocator matchfunction provisioner operator)

# nats_users makes each user's password once (kept in Secrets, reused by
# later runs): in namespace nats for the server (quickmatch-nats-passwords,
# keys FRONTEND_PASSWORD, ...), and in the quickmatch namespace one Secret
# per user with keys user and password, as the chart reads them.
nats_users() {
  kubectl create namespace nats --dry-run=client -o yaml | kubectl apply -f -
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
  local user password
  for user in "${NATS_USERS[@]}"; do
    if kubectl get secret -n "$NAMESPACE" "quickmatch-nats-$user" >/dev/null 2>&1; then
      continue
    fi
    password="$(openssl rand -hex 24)"
    kubectl create secret generic -n "$NAMESPACE" "quickmatch-nats-$user" \
      --from-literal=user="$user" --from-literal=password="$password"
  done
  local args=()
  for user in "${NATS_USERS[@]}"; do
    password="$(kubectl get secret -n "$NAMESPACE" "quickmatch-nats-$user" -o jsonpath='{.data.password}' | base64 -d)"
    args+=("--from-literal=${user^^}_PASSWORD=$password")
  done
  kubectl create secret generic -n nats quickmatch-nats-passwords "${args[@]}" \
    --dry-run=client -o yaml | kubectl apply -f -
}

# nats_values_file prints values for the official NATS chart: the
# authorization block of deploy/nats/nats.conf as an included file of the
# server's configuration, its $<USER>_PASSWORD variables from the Secret
# nats_users made.
nats_values_file() {
  local user
  cat <<'YAML'
config:
  merge:
    00$include: quickmatch-auth.conf
configMap:
  merge:
    data:
      quickmatch-auth.conf: |
YAML
  sed -n '/^authorization {/,$p' "$ROOT/deploy/nats/nats.conf" | sed 's/^/        /'
  printf 'container:\n  env:\n'
  for user in "${NATS_USERS[@]}"; do
    printf '    %s_PASSWORD:\n      valueFrom:\n        secretKeyRef: { name: quickmatch-nats-passwords, key: %s_PASSWORD }\n' "${user^^}" "${user^^}"
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

  log "installing NATS with JetStream and the users of deploy/nats/nats.conf"
  nats_users
  local nats_version=()
  if [ -n "$NATS_CHART_VERSION" ]; then nats_version=(--version "$NATS_CHART_VERSION"); fi
  local nats_values
  nats_values="$(mktemp)"
  nats_values_file >"$nats_values"
  helm upgrade --install nats nats/nats "${nats_version[@]}" --namespace nats --create-namespace \
    --set config.jetstream.enabled=true \
    --set config.jetstream.fileStore.pvc.size=1Gi \
    -f "$nats_values" \
    --wait --timeout 5m
  rm -f "$nats_values"

  log "building and loading the images"
  for svc in frontend matcher allocator game; do
    docker build --target "$svc" -t "quickmatch/$svc:dev" "$ROOT"
    kind load docker-image --name "$CLUSTER" "quickmatch/$svc:dev"
  done

  log "installing quickmatch"
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
  # Join tokens: the allocator signs with the private key (a Secret), game
  # servers verify with the public key (a ConfigMap). Made once, kept.
  if ! kubectl get secret -n "$NAMESPACE" quickmatch-join-key >/dev/null 2>&1; then
    keydir="$(mktemp -d)"
    openssl genpkey -algorithm ed25519 -out "$keydir/join.key"
    openssl pkey -in "$keydir/join.key" -pubout -out "$keydir/join.pub"
    kubectl create secret generic -n "$NAMESPACE" quickmatch-join-key --from-file=join.key="$keydir/join.key"
    kubectl create configmap -n "$NAMESPACE" quickmatch-join-public-keys --from-file=join.pub="$keydir/join.pub" \
      --dry-run=client -o yaml | kubectl apply -f -
    rm -rf "$keydir"
  fi
  helm upgrade --install quickmatch "$ROOT/deploy/helm/quickmatch" --namespace "$NAMESPACE" \
    --set image.registry=quickmatch --set image.tag=dev --set image.pullPolicy=Never \
    --set nats.url=nats://nats.nats.svc:4222 --set nats.streamReplicas=1 \
    --set joinKeys.privateKey.existingSecret=quickmatch-join-key \
    --set joinKeys.publicKeys.existingConfigMap=quickmatch-join-public-keys \
    --set nats.auth.type=password \
    --set frontend.auth.insecure=true \
    --set frontend.service.type=NodePort --set frontend.service.nodePort=30000 \
    --set matcher.autoscaling.enabled=false --set matcher.replicas=2 \
    --set gameServers.replicas=2 --set gameServers.autoscaler.policy=Webhook \
    --set networkPolicy.enabled=false \
    --wait --timeout 5m
  helm test quickmatch --namespace "$NAMESPACE"

  log "ready: open http://localhost:${FRONTEND_PORT} in two browser tabs"
  echo "(identity is off here: frontend.auth.insecure; NATS has the users of deploy/nats/nats.conf,"
  echo " the operator's password: kubectl get secret -n $NAMESPACE quickmatch-nats-operator -o jsonpath='{.data.password}' | base64 -d)"
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
