#!/usr/bin/env bash
# Smoke test of gendoc's Kubernetes test tier: brings up a real control plane
# on loopback only (etcd + kube-apiserver with RBAC + kube-controller-manager,
# no kubelet), shows it answering, then stops it and removes every temp file.
#
#   scripts/k8s-smoke.sh            # builds/reuses the binaries via k8s-tools.sh
#   K8S_BIN=/path/to/bin scripts/k8s-smoke.sh
#
# Everything listens on 127.0.0.1 free ports; every wait is bounded
# (SMOKE_TIMEOUT seconds per wait, default 90). Exit 0 = all checks passed.
# SMOKE_LOGS=DIR keeps the components' logs there (they are shown on failure).
# The flags here are the ones documented in docs/k8s-test-tier.md.
set -euo pipefail
cd "$(dirname "$0")/.."

TIMEOUT="${SMOKE_TIMEOUT:-90}"
BIN="${K8S_BIN:-$(scripts/k8s-tools.sh | tail -1)}"
for b in etcd kube-apiserver kube-controller-manager kubectl helm; do
  [ -x "$BIN/$b" ] || { echo "k8s-smoke: $BIN/$b missing" >&2; exit 1; }
done

say() { printf '\n== %s\n' "$*"; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gendoc-k8s-smoke.XXXXXX")"
PIDS=()

stop_all() { # newest first: controller-manager, apiserver, etcd
  local i pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
cleanup() {
  local rc=$?
  stop_all
  if [ "$rc" -ne 0 ] && [ -d "$WORK" ]; then
    for f in "$WORK"/*.log; do
      [ -f "$f" ] || continue
      echo "---- last lines of $(basename "$f")" >&2
      tail -n 15 "$f" >&2
    done
  fi
  if [ -n "${SMOKE_LOGS:-}" ]; then mkdir -p "$SMOKE_LOGS" && cp "$WORK"/*.log "$SMOKE_LOGS"/ 2>/dev/null || true; fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # DESCRIPTION COMMAND...: retry for up to $TIMEOUT s
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then echo "k8s-smoke: timed out waiting for $what" >&2; return 1; fi
    for pid in "${PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null || { echo "k8s-smoke: a process died waiting for $what" >&2; return 1; }
    done
    sleep 0.5
  done
}

# Four free ports on 127.0.0.1, held open together so they are distinct.
read -r ETCD_PORT PEER_PORT API_PORT KCM_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()')

say "certificates and keys (openssl) in $WORK"
cd "$WORK"
exec 3>openssl.log
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=gendoc-test-ca" -keyout ca.key -out ca.crt 2>&3
sign() { # NAME SUBJECT EXTENSIONS
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "$2" -keyout "$1.key" -out "$1.csr" 2>&3
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.crt" 2>&3
}
sign apiserver "/CN=kube-apiserver" \
  "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment"
# system:masters = cluster-admin, bypasses RBAC like kubeadm's admin.conf
sign admin "/O=system:masters/CN=gendoc-admin" "extendedKeyUsage=clientAuth"
# the user the bootstrap RBAC policy grants the controller-manager's rights to
sign kcm "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>&3
openssl pkey -in sa.key -pubout -out sa.pub 2>&3

kubeconfig() { # FILE USER
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gendoc-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $WORK/ca.crt
users:
- name: $2
  user:
    client-certificate: $WORK/$2.crt
    client-key: $WORK/$2.key
contexts:
- name: gendoc-test
  context: {cluster: gendoc-test, user: $2}
current-context: gendoc-test
EOF
}
kubeconfig admin.kubeconfig admin
kubeconfig kcm.kubeconfig kcm
KC=("$BIN/kubectl" --kubeconfig "$WORK/admin.kubeconfig" --request-timeout=10s)

say "etcd $("$BIN/etcd" --version | head -1 | awk '{print $3}') on 127.0.0.1:$ETCD_PORT"
"$BIN/etcd" --name gendoc-test --data-dir "$WORK/etcd-data" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "gendoc-test=http://127.0.0.1:$PEER_PORT" \
  --unsafe-no-fsync --log-level warn >etcd.log 2>&1 &
PIDS+=($!)
wait_for "etcd /health" curl -sf "http://127.0.0.1:$ETCD_PORT/health"

say "kube-apiserver $("$BIN/kube-apiserver" --version | awk '{print $2}') on https://127.0.0.1:$API_PORT (RBAC)"
t0=$SECONDS
"$BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
  --cert-dir "$WORK/apiserver-certs" \
  --tls-cert-file apiserver.crt --tls-private-key-file apiserver.key \
  --client-ca-file ca.crt \
  --authorization-mode RBAC \
  --enable-admission-plugins OwnerReferencesPermissionEnforcement \
  --service-account-issuer "https://127.0.0.1:$API_PORT" \
  --service-account-key-file sa.pub \
  --service-account-signing-key-file sa.key \
  --service-cluster-ip-range 10.0.0.0/24 \
  --endpoint-reconciler-type none \
  --allow-privileged=true >apiserver.log 2>&1 &
PIDS+=($!)
wait_for "kube-apiserver /readyz" "${KC[@]}" get --raw /readyz
echo "ready after $((SECONDS - t0))s"

say "kubectl get ns"
"${KC[@]}" get ns
say "kubectl api-resources | head"
"${KC[@]}" api-resources >api-resources.txt # not piped: head would SIGPIPE kubectl
head api-resources.txt
say "RBAC is enforced: an unknown service account may not list pods"
if "${KC[@]}" get pods -A --as system:serviceaccount:default:nobody >/dev/null 2>&1; then
  echo "k8s-smoke: expected RBAC to forbid this" >&2; exit 1
fi
"${KC[@]}" auth can-i list pods --as system:serviceaccount:default:nobody || true

say "kube-controller-manager on https://127.0.0.1:$KCM_PORT"
"$BIN/kube-controller-manager" \
  --kubeconfig kcm.kubeconfig \
  --authentication-kubeconfig kcm.kubeconfig --authorization-kubeconfig kcm.kubeconfig \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --cert-dir "$WORK/kcm-certs" \
  --service-account-private-key-file sa.key --root-ca-file ca.crt \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file ca.crt --cluster-signing-key-file ca.key \
  --controllers '*' --leader-elect=false >kcm.log 2>&1 &
PIDS+=($!)
wait_for "kube-controller-manager /healthz" curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
wait_for "the default service account" "${KC[@]}" -n default get serviceaccount default
"${KC[@]}" -n default get serviceaccount default

say "Deployment -> ReplicaSet -> Pod (Pending: no kubelet), then garbage collection"
"${KC[@]}" -n default create deployment smoke --image=example.invalid/smoke:1 --replicas=1
wait_for "a pod of the deployment" bash -c \
  "[ -n \"\$(\"\$@\" -n default get pods -l app=smoke -o name)\" ]" _ "${KC[@]}"
"${KC[@]}" -n default get deploy,rs,pods -o wide
"${KC[@]}" -n default delete deployment smoke --wait=false
wait_for "the garbage collector to delete the ReplicaSet" bash -c \
  "[ -z \"\$(\"\$@\" -n default get rs -l app=smoke -o name)\" ]" _ "${KC[@]}"
echo "ReplicaSet gone"

say "helm talks to it"
HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" \
  HELM_DATA_HOME="$WORK/helm/data" \
  "$BIN/helm" --kubeconfig "$WORK/admin.kubeconfig" list -A

say "stopping"
stop_all
echo "k8s-smoke: OK (control plane came up on 127.0.0.1 and went down; temp files removed)"
