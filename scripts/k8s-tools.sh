#!/usr/bin/env bash
# Builds, once, the binaries of gendoc's Kubernetes test tier (a real
# kube-apiserver + etcd on loopback, as controller-runtime's envtest does, plus
# kube-controller-manager, kubectl and helm v3) from the Go module proxy, and
# caches them outside the repo, keyed by Kubernetes version:
#
#   ${GENDOC_CACHE:-$HOME/.cache/gendoc}/k8s/<k8s-version>/bin/
#
# Idempotent: a warm cache returns at once (no `go` call). Each binary is built
# into a temporary name and renamed atomically, so an interrupted run simply
# resumes with the missing ones. Progress goes to stderr; the LAST line on
# stdout is the bin dir:   BIN=$(scripts/k8s-tools.sh | tail -1)
#
# `k8s-tools.sh node` also builds what the cluster tier (tests/cluster) runs on
# top: kubelet, kube-scheduler, kube-proxy (same Kubernetes version),
# containerd 2.x with its runc shim and ctr (static, CGO_ENABLED=0) and the
# NetworkPolicy agent kube-router. runc and
# the CNI plugins come from Debian (scripts/k8s-node-deps.sh).
#
# Versions can be overridden: K8S_VERSION, ETCD_VERSION, HELM_VERSION,
# CONTAINERD_VERSION, KUBE_ROUTER_VERSION.
# Timings, flags and gotchas: docs/k8s-test-tier.md.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
# The NetworkPolicy agent: kube-router's firewall (iptables + ipset). v2.1.0 is the
# only v2 release the module proxy lists; kube-network-policies cannot run on this
# kernel (docs/k8s-test-tier.md).
KUBE_ROUTER_VERSION="${KUBE_ROUTER_VERSION:-v2.1.0}"

CACHE_ROOT="${GENDOC_CACHE:-$HOME/.cache/gendoc}"
BIN="$CACHE_ROOT/k8s/$K8S_VERSION/bin"

# binary name -> version it must have been built from (stamped in .stamp-NAME)
declare -A WANT=(
  [kube-apiserver]="$K8S_VERSION"
  [kube-controller-manager]="$K8S_VERSION"
  [kubectl]="$K8S_VERSION"
  [etcd]="$ETCD_VERSION"
  [helm]="$HELM_VERSION"
  [kubelet]="$K8S_VERSION"
  [kube-scheduler]="$K8S_VERSION"
  [kube-proxy]="$K8S_VERSION"
  [containerd]="$CONTAINERD_VERSION"
  [containerd-shim-runc-v2]="$CONTAINERD_VERSION"
  [ctr]="$CONTAINERD_VERSION"
  [kube-router]="$KUBE_ROUTER_VERSION"
)
ORDER=(kube-apiserver kube-controller-manager kubectl etcd helm)
if [ "${1:-}" = node ]; then
  ORDER+=(kube-scheduler kubelet kube-proxy containerd containerd-shim-runc-v2 ctr kube-router)
fi

log() { printf 'k8s-tools: %s\n' "$*" >&2; }

have() { # NAME -> true when the cached binary is present and of the wanted version
  [ -x "$BIN/$1" ] && [ -f "$BIN/.stamp-$1" ] && [ "$(<"$BIN/.stamp-$1")" = "${WANT[$1]}" ]
}

all_present() {
  local n
  for n in "${ORDER[@]}"; do have "$n" || return 1; done
}

# ---- fast path: warm cache, no go, no lock -----------------------------------
if all_present; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { log "go is not installed (need Go >= 1.26)"; exit 1; }
mkdir -p "$BIN"

# One builder at a time (parallel test workers may all call this script).
exec 9>"$BIN/.lock"
if ! flock -n 9; then
  log "another k8s-tools.sh is building into $BIN; waiting for it"
  flock 9
fi
if all_present; then echo "$BIN"; exit 0; fi
rm -f "$BIN"/.*.tmp.* # leftovers of an interrupted run (we hold the lock)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gendoc-k8s-tools.XXXXXX")"
cleanup() { rm -rf "$WORK"; rm -f "$BIN"/.*.tmp.$$; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Static binaries that run on any Linux of this kind; user GOFLAGS (e.g.
# -mod=vendor) must not leak in. GOMODCACHE/GOCACHE stay at their defaults
# (~/go/pkg/mod, ~/.cache/go-build) so a rebuild after an interruption is fast.
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
BUILD_FLAGS=(-trimpath)

STAGING_VERSION="v0.${K8S_VERSION#v1.}" # v1.36.3 -> v0.36.3

install_bin() { # NAME TMPFILE: stamp + atomic rename into the cache
  local name=$1 tmp=$2
  local check=(--version)
  case $name in
    kubectl) check=(version --client) ;; helm) check=(version) ;;
    containerd-shim-runc-v2) check=(-v) ;;
  esac
  "$tmp" "${check[@]}" >/dev/null 2>&1 || { log "$name was built but does not run"; return 1; }
  printf '%s' "${WANT[$name]}" >"$BIN/.stamp-$name.tmp.$$"
  rm -f "$BIN/.stamp-$name"
  mv -f "$tmp" "$BIN/$name"
  mv -f "$BIN/.stamp-$name.tmp.$$" "$BIN/.stamp-$name"
}

# ---- k8s.io/kubernetes wrapper module ----------------------------------------
# k8s.io/kubernetes cannot be `go install`ed: its go.mod requires every
# k8s.io/<staging> module at v0.0.0 and replaces it with ./staging/src/...
# The wrapper requires k8s.io/kubernetes and replaces each staging module with
# its published v0.Y.Z release; the list comes from kubernetes' own go.mod.
K8S_MOD=""
k8s_wrapper() {
  [ -n "$K8S_MOD" ] && return 0
  K8S_MOD="$WORK/k8s"
  mkdir -p "$K8S_MOD"
  log "reading k8s.io/kubernetes@$K8S_VERSION's go.mod (downloads its source unless in the module cache)"
  local gomod
  gomod="$(cd "$WORK" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [ -f "$gomod" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; return 1; }
  local staging goline
  staging="$(awk '/=> *\.\/staging\/src\// { for (i = 1; i <= NF; i++) if ($i == "=>") print $(i-1) }' "$gomod" | sort -u)"
  [ -n "$staging" ] || { log "no staging replace directives found in $gomod"; return 1; }
  goline="$(awk '$1 == "go" { print $2; exit }' "$gomod")"
  (
    cd "$K8S_MOD"
    go mod init gendoc.local/k8s-tools >/dev/null 2>&1
    args=(-go="$goline" -require="k8s.io/kubernetes@$K8S_VERSION")
    for m in $staging; do args+=(-replace="$m=$m@$STAGING_VERSION"); done
    go mod edit "${args[@]}"
    # kubernetes' godebug defaults only apply when set by the main module
    awk '$1 == "godebug" && $2 != "(" { print }' "$gomod" >>go.mod
  )
  log "wrapper module: k8s.io/kubernetes@$K8S_VERSION + $(wc -w <<<"$staging") staging modules at $STAGING_VERSION"
}

k8s_ldflags() { # version info that the release build (hack/lib/version.sh) stamps in
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local f="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  printf '%s' "$f"
}

build_k8s() { # NAME (cmd/NAME in k8s.io/kubernetes)
  local name=$1 t0=$SECONDS tmp="$BIN/.$1.tmp.$$"
  k8s_wrapper
  log "building $name $K8S_VERSION (cold: many minutes on 2 cores)"
  (cd "$K8S_MOD" && go build -mod=mod "${BUILD_FLAGS[@]}" -ldflags="$(k8s_ldflags)" \
    -o "$tmp" "k8s.io/kubernetes/cmd/$name")
  install_bin "$name" "$tmp"
  log "built $name in $((SECONDS - t0))s"
}

# ---- etcd ---------------------------------------------------------------------
# go.etcd.io/etcd/server/v3 is the etcd main package, but its go.mod has
# replace directives (../api etc.), so `go install ...@version` refuses it: a
# wrapper module that merely requires it resolves the published siblings.
build_etcd() {
  local t0=$SECONDS tmp="$BIN/.etcd.tmp.$$" dir="$WORK/etcd"
  log "building etcd $ETCD_VERSION"
  mkdir -p "$dir"
  (
    cd "$dir"
    go mod init gendoc.local/etcd-tools >/dev/null 2>&1
    go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go build -mod=mod "${BUILD_FLAGS[@]}" -ldflags="-s -w" -o "$tmp" go.etcd.io/etcd/server/v3
  )
  install_bin etcd "$tmp"
  log "built etcd in $((SECONDS - t0))s"
}

# ---- helm v3 --------------------------------------------------------------------
go_install() { # NAME PACKAGE@VERSION LDFLAGS: `go install` into the cache as NAME
  local name=$1 t0=$SECONDS gobin="$WORK/gobin"
  log "building $name from $2"
  mkdir -p "$gobin"
  (cd "$WORK" && GOBIN="$gobin" go install "${BUILD_FLAGS[@]}" -ldflags="-s -w $3" "$2")
  mv -f "$gobin/$name" "$BIN/.$name.tmp.$$"
  install_bin "$name" "$BIN/.$name.tmp.$$"
  log "built $name in $((SECONDS - t0))s"
}

build_helm() {
  go_install helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}

# ---- containerd 2.x ------------------------------------------------------------
# Debian's containerd (1.6) lacks CRI calls kubelet 1.36 makes; 2.x builds
# static with `go install` (its go.mod has no replace directives).
build_containerd() { # NAME (cmd/NAME in github.com/containerd/containerd/v2)
  go_install "$1" "github.com/containerd/containerd/v2/cmd/$1@$CONTAINERD_VERSION" \
    "-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
}

# ---- kube-router ------------------------------------------------------------------
build_kube_router() {
  go_install kube-router "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION" \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
}

# Builds run one after another: each is heavy on 2 cores.
for n in "${ORDER[@]}"; do
  have "$n" && continue
  case $n in
    etcd) build_etcd ;;
    helm) build_helm ;;
    containerd | containerd-shim-runc-v2 | ctr) build_containerd "$n" ;;
    kube-router) build_kube_router ;;
    *) build_k8s "$n" ;;
  esac
done

all_present || { log "some binaries are still missing in $BIN"; exit 1; }
log "all binaries ready in $BIN"
echo "$BIN"
