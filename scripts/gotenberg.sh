#!/usr/bin/env bash
# Builds (once) a real Gotenberg 8, LibreOffice-only variant, for the benchmark
# peer and the sidecar-compatibility test, and prints the path of a launcher
# as the LAST line of stdout; everything else goes to stderr.
#
#   "$(scripts/gotenberg.sh | tail -1)" --api-port 3100 --api-bind-ip 127.0.0.1
#
# What it puts under ${GENDOC_CACHE:-$HOME/.cache/gendoc}/gotenberg/<version>/
# (never in the repository):
#   bin/gotenberg-libreoffice  Gotenberg's cmd/gotenberg-libreoffice, built from
#                              the Go module proxy (go.sum-verified)
#   bin/pdfcpu                 pdfcpu (the version Gotenberg's image pins), same way
#   bin/unoconverter           PyPI's unoconv 0.9.0 (sha256-checked), patched for
#                              the two flags Gotenberg's own unoconverter adds
#   bin/unoconverter-upstream  only with GOTENBERG_UNOCONVERTER=FILE (below):
#                              Gotenberg's own unoconverter, run by Debian's python3
#   versions/                  backing-tool versions, as the image records them
#   gotenberg                  the launcher: the image's environment, then exec
# Debian packages it needs (installed only when missing): qpdf,
# libimage-exiftool-perl, pdftk-java, plus LibreOffice and python3-uno.
# Idempotent and safe to run concurrently (flock). See docs/gotenberg.md.
set -euo pipefail

VERSION="${GOTENBERG_VERSION:-8.34.0}"
PDFCPU_VERSION="v0.12.0"
UNOCONV_VERSION="0.9.0"
UNOCONV_SHA256="308ebfd98e67d898834876348b27caf41470cd853fbe2681cc7dacd8fd5e6031"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/scripts/lib/cache.sh"
DIR="$GENDOC_CACHE/gotenberg/$VERSION"
LAUNCHER="$DIR/gotenberg"

log() { echo "gotenberg.sh: $*" >&2; }

cache_lock "$DIR" gotenberg.sh

# -- Debian packages (dpkg first; apt-get update only when something is missing)
need=(qpdf libimage-exiftool-perl pdftk-java python3-uno libreoffice-writer-nogui)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# LibreOffice may come from another package set (libreoffice-writer): accept it.
if [ -x /usr/lib/libreoffice/program/soffice.bin ]; then
  missing=("${missing[@]/libreoffice-writer-nogui/}")
fi
read -r -a missing <<<"${missing[*]:-}"
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# -- Gotenberg's own unoconverter, optional: GOTENBERG_UNOCONVERTER=FILE names the
# `unoconv` file of the public repository gotenberg/unoconverter, which no package
# registry carries (its image downloads it from GitHub); get it yourself. It goes
# beside the stand-in as bin/unoconverter-upstream, run by Debian's python3 (the image
# links python to python3 for the same reason); `gendoc bench` then prefers it.
if [ -n "${GOTENBERG_UNOCONVERTER:-}" ]; then
  src="$GOTENBERG_UNOCONVERTER"
  [ -f "$src" ] || { log "GOTENBERG_UNOCONVERTER: $src is not a file"; exit 1; }
  # Gotenberg 8 always passes this flag; unoconv without it is not Gotenberg's fork.
  grep -q -- "disable-update-indexes" "$src" || { log "$src is not gotenberg/unoconverter"; exit 1; }
  mkdir -p "$DIR/lib" "$DIR/bin"
  install -m 0644 "$src" "$DIR/lib/unoconverter-upstream"
  printf '#!/bin/sh\nexec /usr/bin/python3 %s "$@"\n' "$DIR/lib/unoconverter-upstream" \
    > "$DIR/bin/unoconverter-upstream.tmp"
  chmod +x "$DIR/bin/unoconverter-upstream.tmp"
  mv -f "$DIR/bin/unoconverter-upstream.tmp" "$DIR/bin/unoconverter-upstream"
  "$DIR/bin/unoconverter-upstream" --version >/dev/null 2>&1 \
    || { log "the upstream unoconverter does not run"; exit 1; }
  log "installed Gotenberg's own unoconverter: $DIR/bin/unoconverter-upstream"
fi

if [ -x "$LAUNCHER" ] && [ -f "$DIR/.complete" ]; then
  log "cached: $LAUNCHER"
  echo "$LAUNCHER"
  exit 0
fi

need_go "building Gotenberg (the peer tests and the bench)"
mkdir -p "$DIR/bin" "$DIR/versions"
started=$SECONDS

# -- Go binaries: download the exact module version, build inside it. (`go
# install pkg@version` would also ask the proxy for the module's version list
# to look for a deprecation notice; that list is not served here.)
go_build() {  # module version package output ldflags
  local dir
  dir="$(go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$dir" ] || { log "go mod download $1@$2 failed"; exit 1; }
  log "building $1@$2 ($3)"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$5" -o "$4.tmp" "$3" >&2)
  mv -f "$4.tmp" "$4"
}
go_build github.com/gotenberg/gotenberg/v8 "v$VERSION" ./cmd/gotenberg-libreoffice \
  "$DIR/bin/gotenberg-libreoffice" "-s -w -X github.com/gotenberg/gotenberg/v8/cmd.Version=$VERSION"
go_build github.com/pdfcpu/pdfcpu "$PDFCPU_VERSION" ./cmd/pdfcpu "$DIR/bin/pdfcpu" \
  "-s -w -X main.version=$PDFCPU_VERSION -X github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model.VersionStr=$PDFCPU_VERSION"

# -- unoconverter: Gotenberg's image ships its own fork of unoconv, which is not
# in any registry; unoconv 0.9.0 from PyPI is the same program minus two flags
# that Gotenberg always or sometimes passes: --disable-update-indexes (skip the
# two refresh-and-update-indexes passes) and --disable-calc-header (CSV only;
# accepted and ignored here). The patch adds them and fails if it cannot.
py=""
for cand in "$ROOT/.venv/bin/python" python3; do
  if "$cand" -m pip --version >/dev/null 2>&1; then py="$cand"; break; fi
done
[ -n "$py" ] || { log "needs a Python with pip to fetch unoconv from PyPI"; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download -q --no-deps --no-binary :all: "unoconv==$UNOCONV_VERSION" -d "$tmp" >&2
echo "$UNOCONV_SHA256  $tmp/unoconv-$UNOCONV_VERSION.tar.gz" | sha256sum -c --quiet - >&2
tar -xzf "$tmp/unoconv-$UNOCONV_VERSION.tar.gz" -C "$tmp"
/usr/bin/python3 - "$tmp/unoconv-$UNOCONV_VERSION/unoconv" "$DIR/bin/unoconverter" <<'EOF'
import sys
from pathlib import Path

src = Path(sys.argv[1]).read_text()
patches = [
    # Debian has no `python`; uno exists only for Debian's python3.
    ("#!/usr/bin/env python\n", "#!/usr/bin/python3\n"),
    ("['disable-html-update-links',",
     "['disable-html-update-links', 'disable-update-indexes', 'disable-calc-header',"),
    ("        self.updatehtmllinks = True\n",
     "        self.updatehtmllinks = True\n        self.updateindexes = True\n"),
    ("            elif opt in ['--disable-html-update-links']:\n",
     "            elif opt in ['--disable-update-indexes']:\n"
     "                self.updateindexes = False\n"
     "            elif opt in ['--disable-calc-header']:\n"
     "                pass\n"
     "            elif opt in ['--disable-html-update-links']:\n"),
    ("            for ii in range(2):\n",
     "            for ii in range(2 if op.updateindexes else 0):\n"),
]
for old, new in patches:
    if src.count(old) != 1:
        sys.exit(f"unoconv patch does not apply: {old!r}")
    src = src.replace(old, new)
out = Path(sys.argv[2])
out.write_text(src)
out.chmod(0o755)
EOF

# -- versions, recorded as Gotenberg's image does (so it never probes at start)
capture() {  # id command...
  local id="$1"; shift
  { "$@" 2>/dev/null || true; } | head -n1 | tr -d '\r' > "$DIR/versions/$id"
}
capture qpdf /usr/bin/qpdf --version
capture exiftool /usr/bin/exiftool -ver
capture pdftk /usr/bin/pdftk --version
{ XDG_CONFIG_HOME="$tmp" "$DIR/bin/pdfcpu" version 2>/dev/null || true; } \
  | sed -n 's/^pdfcpu:[[:space:]]*//p' | head -n1 > "$DIR/versions/pdfcpu"
capture libreoffice-api /usr/lib/libreoffice/program/soffice.bin --version

# -- the launcher: the LibreOffice image's environment, overridable by the caller
cat > "$LAUNCHER.tmp" <<EOF
#!/bin/sh
# Gotenberg $VERSION (LibreOffice variant), built by scripts/gotenberg.sh.
export LIBREOFFICE_BIN_PATH="\${LIBREOFFICE_BIN_PATH:-/usr/lib/libreoffice/program/soffice.bin}"
export UNOCONVERTER_BIN_PATH="\${UNOCONVERTER_BIN_PATH:-$DIR/bin/unoconverter}"
export PDFTK_BIN_PATH="\${PDFTK_BIN_PATH:-/usr/bin/pdftk}"
export QPDF_BIN_PATH="\${QPDF_BIN_PATH:-/usr/bin/qpdf}"
export EXIFTOOL_BIN_PATH="\${EXIFTOOL_BIN_PATH:-/usr/bin/exiftool}"
export PDFCPU_BIN_PATH="\${PDFCPU_BIN_PATH:-$DIR/bin/pdfcpu}"
export GOTENBERG_VERSIONS_DIR_PATH="\${GOTENBERG_VERSIONS_DIR_PATH:-$DIR/versions}"
# Without these the OpenTelemetry SDK exports to localhost:4318 and logs errors.
export OTEL_TRACES_EXPORTER="\${OTEL_TRACES_EXPORTER:-none}"
export OTEL_METRICS_EXPORTER="\${OTEL_METRICS_EXPORTER:-none}"
export OTEL_LOGS_EXPORTER="\${OTEL_LOGS_EXPORTER:-none}"
export LANG="\${LANG:-C.UTF-8}" LC_ALL="\${LC_ALL:-C.UTF-8}"
exec "$DIR/bin/gotenberg-libreoffice" "\$@"
EOF
chmod +x "$LAUNCHER.tmp"
mv -f "$LAUNCHER.tmp" "$LAUNCHER"
"$LAUNCHER" --help >/dev/null 2>&1 || { log "built binary does not run"; exit 1; }
touch "$DIR/.complete"
log "built Gotenberg $VERSION in $((SECONDS - started))s: $LAUNCHER"
echo "$LAUNCHER"
