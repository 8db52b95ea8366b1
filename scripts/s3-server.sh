#!/usr/bin/env bash
# Builds, once, the S3-compatible server the store tests run against, and prints
# its path as the LAST line of stdout (progress goes to stderr):
#
#   VERSITYGW=$(scripts/s3-server.sh | tail -1)
#
# The server is versitygw (Versity's S3 gateway over a POSIX directory,
# Apache-2.0), built from the Go module proxy with `go install` (go.sum-verified)
# into ${GENDOC_CACHE:-$HOME/.cache/gendoc}/s3/<version>/bin/versitygw, never into
# the repository. Why versitygw: it is the S3-compatible server the Go module
# proxy serves by a released version (MinIO's and SeaweedFS's modules list none),
# it does S3's conditional writes (If-Match / If-None-Match: * answer 412), which
# the store's "current" pointer relies on, and it keeps objects as plain files in a
# directory, so a test server is one process and one temporary directory.
# In-memory imitations (moto, gofakes3) are not tests of S3.
#
# Idempotent: a warm cache returns at once with no `go` call. Safe to run
# concurrently (flock); the binary is built to a temporary name and renamed.
# A missing Go fails loudly (exit 1): the store tests must not be skipped.
set -euo pipefail

. "$(dirname "$0")/lib/cache.sh"
VERSION="${VERSITYGW_VERSION:-v1.8.0}"
DIR="$GENDOC_CACHE/s3/$VERSION"
BIN="$DIR/bin/versitygw"

log() { printf 's3-server: %s\n' "$*" >&2; }

have() { [ -x "$BIN" ] && [ -f "$DIR/.complete" ]; }

if have; then
  echo "$BIN"
  exit 0
fi

need_go "building versitygw (the S3 store tests)"
mkdir -p "$DIR/bin"
cache_lock "$DIR" s3-server.sh
if have; then echo "$BIN"; exit 0; fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gendoc-s3-server.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# A static binary; user GOFLAGS (e.g. -mod=vendor) must not leak in. The module
# and build caches stay at Go's defaults, so a rerun after an interruption is fast.
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
t0=$SECONDS
log "building versitygw $VERSION from the Go module proxy (about 80 s on 2 cores)"
(cd "$WORK" && GOBIN="$WORK/bin" go install -trimpath -ldflags="-s -w" \
  "github.com/versity/versitygw/cmd/versitygw@$VERSION")
"$WORK/bin/versitygw" --version >/dev/null 2>&1 || { log "versitygw was built but does not run"; exit 1; }
mv -f "$WORK/bin/versitygw" "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN"
printf '%s\n' "$VERSION" >"$DIR/.complete"
log "built versitygw in $((SECONDS - t0))s: $BIN"
echo "$BIN"
