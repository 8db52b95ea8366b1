#!/usr/bin/env bash
# Builds the three gendoc images (service, converter, operator) and the pause
# image the cluster tier (tests/cluster) runs, with Debian's docker.io, from
# nothing but Debian's packages and PyPI: no image registry is reachable here.
#
#   1. gendoc-debian:bookworm  mmdebstrap minbase + python3 (images/python-packages.txt),
#                              imported with `docker import`
#   2. a wheelhouse            `pip wheel` of gendoc[operator] on the host (pip inside a
#                              build cannot verify the index's TLS here)
#   3. gendoc-base:<hash>      images/base/Dockerfile: the venv every image shares
#   4. gendoc-{service,converter,operator}:<hash>, gendoc-pause:<hash>
#   5. gendoc-s3:<hash>          images/tool/Dockerfile: versitygw (scripts/s3-server.sh)
#
# Every image is tagged with a hash of its inputs and built only when no image
# of that tag exists, so a warm machine returns in seconds. Each image is also
# saved as a tar under the cache for `ctr images import`. Installs docker.io,
# mmdebstrap and the node's Debian packages if missing and starts dockerd if
# nothing runs it (this machine kind has no systemd).
#
# The LAST line on stdout is a JSON object: {"registry", "tag", "pause", "tars",
# "tools": {"s3"}}.
#   IMAGES=$(scripts/cluster-images.sh | tail -1)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

CACHE_ROOT="${GENDOC_CACHE:-$HOME/.cache/gendoc}"
OUT="$CACHE_ROOT/images"
mkdir -p "$OUT"
log() { printf 'cluster-images: %s\n' "$*" >&2; }

# One builder at a time (several test sessions may call this script).
exec 9>"$OUT/.lock"
if ! flock -n 9; then
  log "another cluster-images.sh is building; waiting for it"
  flock 9
fi

bash scripts/k8s-node-deps.sh >&2
# The legacy builder: Debian's docker.io has no buildx plugin. Build steps use
# the host's network (dockerd runs without a bridge, see k8s-node-deps.sh).
export DOCKER_BUILDKIT=0
BUILD=(docker build -q --network host --pull=false)

hash_of() { # FILE... -> sha256 over names and contents, 12 hex digits
  local f
  for f in "$@"; do
    case $f in /dev/fd/*) ;; *) printf '%s\n' "$f" ;; esac # <(...) names vary
    cat "$f"
  done | sha256sum | cut -c1-12
}
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# ---- 1. the Debian base ----------------------------------------------------------
# minbase: apt, dpkg, passwd (useradd) and little else; the host's mirror.
include=$(sed -e 's/#.*//' images/python-packages.txt | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
MMDEBSTRAP=(mmdebstrap --quiet --variant=minbase --include="$include" --format=tar bookworm -
  /etc/apt/sources.list.d/debian.sources)
debian_hash=$(hash_of <(echo "${MMDEBSTRAP[*]}"))
DEBIAN="gendoc-debian:bookworm-$debian_hash"
if ! have_image "$DEBIAN"; then
  log "making $DEBIAN with mmdebstrap (about 30 s)"
  "${MMDEBSTRAP[@]}" | docker import - "$DEBIAN" >/dev/null
fi

# ---- 2. the wheelhouse -----------------------------------------------------------
# Two parts, so that a change of gendoc's code rebuilds only its own wheel and
# the image layer that installs it: the dependencies (keyed by pyproject.toml)
# and gendoc's wheel (keyed by every file it holds).
mapfile -t sources < <(git ls-files pyproject.toml src service converter_sidecar operator |
  grep -v '/tests/' | sort)
wheel_hash=$(hash_of "${sources[@]}")
deps_hash=$(hash_of pyproject.toml)
DEPS="$OUT/deps-$deps_hash" GENDOC="$OUT/gendoc-$wheel_hash"
wheels() { # DIR PIP-WHEEL-ARGS...: build into DIR.tmp, then rename (an interrupted run retries)
  local dir=$1; shift
  [ -f "$dir/.complete" ] && return 0
  log "building $dir"
  rm -rf "$dir" "$dir.tmp"
  local src
  src="$(mktemp -d "${TMPDIR:-/tmp}/gendoc-src.XXXXXX")"
  git ls-files -z pyproject.toml src service converter_sidecar operator |
    tar --null -T - -cf - | tar -xf - -C "$src"
  nice "$REPO/.venv/bin/python" -m pip wheel -q --wheel-dir "$dir.tmp" "$@" "$src[operator]"
  rm -rf "$src"
  touch "$dir.tmp/.complete"
  mv "$dir.tmp" "$dir"
}
wheels "$DEPS"
rm -f "$DEPS"/gendoc-*.whl
wheels "$GENDOC" --no-deps
# Superseded builds only take space, but another checkout of gendoc on this
# machine (a second worktree) may still use them: what no run has used for
# GENDOC_IMAGES_KEEP_HOURS (default 48) goes, so engineers who alternate
# between checkouts do not rebuild each other's images every time.
KEEP_MIN=$((${GENDOC_IMAGES_KEEP_HOURS:-48} * 60))
USED="$OUT/used"
mkdir -p "$USED"
used() { local r; for r in "$@"; do touch "$USED/${r//[:\/]/-}"; done; }
stale() { local s="$USED/${1//[:\/]/-}"; [ ! -e "$s" ] || [ -n "$(find "$s" -mmin +"$KEEP_MIN")" ]; }
touch "$DEPS" "$GENDOC"
find "$OUT" -maxdepth 1 -type d \( -name 'deps-*' -o -name 'gendoc-*' -o -name 'wheels-*' \) \
  -mmin +"$KEEP_MIN" -exec rm -rf {} +

# ---- 3./4. the images ------------------------------------------------------------
# A build context of its own: the Dockerfiles' repository paths plus wheels/{deps,gendoc}.
CTX="$(mktemp -d "${TMPDIR:-/tmp}/gendoc-ctx.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/images"
cp -r images/. "$CTX/images/"
mkdir "$CTX/wheels"
cp -r "$DEPS" "$CTX/wheels/deps"
cp -r "$GENDOC" "$CTX/wheels/gendoc"

declare -A REF
build() { # NAME TAG-HASH BUILD-ARGS...
  local name=$1 h=$2; shift 2
  local ref="gendoc-$name:$h"
  if ! have_image "$ref"; then
    log "building $ref"
    local t0=$SECONDS
    nice "${BUILD[@]}" -t "$ref" -f "$CTX/images/$name/Dockerfile" "$@" "$CTX" >/dev/null
    log "built $ref in $((SECONDS - t0))s"
  fi
  REF[$name]=$ref
}

build base "$(hash_of images/base/Dockerfile <(echo "$DEBIAN $deps_hash $wheel_hash"))" \
  --build-arg "DEBIAN=$DEBIAN"
base_args=(--build-arg "DEBIAN=$DEBIAN" --build-arg "BASE=${REF[base]}")
build service "$(hash_of images/service/Dockerfile <(echo "${REF[base]}"))" "${base_args[@]}"
build operator "$(hash_of images/operator/Dockerfile <(echo "${REF[base]}"))" "${base_args[@]}"
build converter "$(hash_of images/converter/Dockerfile images/converter/packages.txt \
  images/install-debian-packages.sh <(echo "${REF[base]}"))" "${base_args[@]}"

# The pod sandbox's pause image: no registry to pull one from, so a static Go
# program that sleeps until signalled, in an image FROM scratch.
pause_hash=$(hash_of images/pause/Dockerfile images/pause/pause.go)
if ! have_image "gendoc-pause:$pause_hash"; then
  (cd images/pause && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags="-s -w" \
    -o "$CTX/images/pause/pause" pause.go)
fi
build pause "$pause_hash"

# Static Go programs the tier runs as pods, each from the binary its own script
# builds and caches: versitygw (the S3-compatible server, scripts/s3-server.sh).
tool_image() { # NAME BINARY
  local name=$1 bin=$2 tool
  tool=$(basename "$bin")
  local h
  h=$(hash_of images/tool/Dockerfile "$bin" <(echo "$DEBIAN"))
  if ! have_image "gendoc-$name:$h"; then
    cp "$bin" "$CTX/images/tool/$tool"
    log "building gendoc-$name:$h"
    nice "${BUILD[@]}" -t "gendoc-$name:$h" -f "$CTX/images/tool/Dockerfile" \
      --build-arg "DEBIAN=$DEBIAN" --build-arg "TOOL=$tool" "$CTX" >/dev/null
    rm -f "$CTX/images/tool/$tool"
  fi
  REF[$name]="gendoc-$name:$h"
}
tool_image s3 "$(bash scripts/s3-server.sh | tail -1)"

# ---- one tag for the three, tars for containerd ------------------------------------
# The chart names all three images with one tag (images.tag): a hash of the three.
TAG=$(printf '%s\n' "${REF[service]}" "${REF[converter]}" "${REF[operator]}" | sha256sum | cut -c1-12)
refs=("${REF[pause]}" "${REF[s3]}")
for name in service converter operator; do
  docker tag "${REF[$name]}" "gendoc-$name:$TAG"
  refs+=("gendoc-$name:$TAG")
done
tars=()
for ref in "${refs[@]}"; do
  tar="$OUT/${ref/:/-}.tar"
  if [ ! -f "$tar" ]; then
    log "saving $ref"
    docker save "$ref" >"$tar.tmp"
    mv "$tar.tmp" "$tar"
  fi
  touch "$tar"
  tars+=("\"$tar\"")
done
# Images and tars of superseded builds: the same rule as the wheels above.
used "${refs[@]}" "${REF[@]}" "$DEBIAN"
docker images --format '{{.Repository}}:{{.Tag}}' | grep '^gendoc-' | while read -r ref; do
  if stale "$ref"; then
    docker rmi "$ref" >/dev/null || true
    rm -f "$USED/${ref//[:\/]/-}"
  fi
done
find "$OUT" -maxdepth 1 -name 'gendoc-*.tar' -mmin +"$KEEP_MIN" -delete
# Images a locally imported tar names without a registry are docker.io/library/'s.
printf '{"registry": "docker.io/library", "tag": "%s", "pause": "docker.io/library/%s", "tars": [%s], "tools": {"s3": "docker.io/library/%s"}}\n' \
  "$TAG" "${REF[pause]}" "$(IFS=,; echo "${tars[*]}")" "${REF[s3]}"
