#!/usr/bin/env bash
# What the cluster tier needs from Debian, installed once, and a Docker daemon
# to build its images with, started if nothing runs one. Idempotent and quick
# when everything is there.
#
# - docker.io (the image builder), mmdebstrap (the Debian base image), runc and
#   containernetworking-plugins (the runtime's OCI runtime and CNI plugins),
#   iptables and conntrack (kube-proxy's iptables mode).
# - dockerd: this machine kind has no systemd (PID 1 is not an init that
#   starts services), so it is started here, detached, logging under the cache.
#   Without a bridge and without iptables rules: Docker's own rules (FORWARD
#   policy DROP, its NAT) would interfere with the cluster's bridge, and its
#   builds need no network of their own (they use the host's, `--network host`).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'k8s-node-deps: %s\n' "$*" >&2; }

sh images/install-debian-packages.sh scripts/k8s-node-packages.txt

CACHE_ROOT="${GENDOC_CACHE:-$HOME/.cache/gendoc}"
mkdir -p "$CACHE_ROOT/docker"
# One starter at a time: two callers that both found no dockerd each started one,
# and the second died on the first's pid file ("pid file found"), failing its run.
exec 8>"$CACHE_ROOT/docker/.start.lock"
flock 8
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: $CACHE_ROOT/docker/dockerd.log)"
  # 8>&- 9>&-: this start lock, and the callers' build lock on fd 9 (cluster-images.sh,
  # cache.sh); a dockerd that inherited either would hold it for as long as it runs.
  setsid nohup dockerd --iptables=false --ip6tables=false --bridge=none \
    >>"$CACHE_ROOT/docker/dockerd.log" 2>&1 </dev/null 8>&- 9>&- &
  for _ in $(seq 600); do
    docker info >/dev/null 2>&1 && break
    kill -0 $! 2>/dev/null || { log "dockerd exited:"; tail -20 "$CACHE_ROOT/docker/dockerd.log" >&2; exit 1; }
    sleep 0.1
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not answer within 60 s"; exit 1; }
fi
exec 8>&-
