#!/usr/bin/env bash
# Installs everything gendoc needs on a Debian 12 machine, idempotently:
# Debian packages (LibreOffice, its Python bridge, fonts, tini, poppler, test
# tools), then a venv in .venv made from Debian's /usr/bin/python3 with
# --system-site-packages (the only interpreter that can import `uno`), then
# the project and its dependencies from PyPI in editable mode; last, it checks
# what it cannot install (Debian 12, root, Go >= 1.26) and warns about each.
# Safe to run again; a warm machine takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# The same package lists the images install (images/*), plus test tools.
sh images/install-debian-packages.sh images/python-packages.txt images/converter/packages.txt \
  scripts/dev-packages.txt

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv from /usr/bin/python3"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

# Re-install only when the dependency list changed.
stamp=.venv/.gendoc-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing gendoc and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,operator]'
  echo "$want" > "$stamp"
fi
.venv/bin/python -c "import uno, docxtpl, starlette" >/dev/null
# axe-core for the playground's accessibility test, in ~/.cache/gendoc (never served).
bash scripts/axe-core.sh >/dev/null

# What bootstrap cannot install: say which tier would fail without it (README,
# "What the machine needs"). Warnings only: `make demo` needs none of these.
warn() { echo "bootstrap: warning: $*" >&2; }
# veraPDF (Maven Central, cached under ~/.cache/gendoc/verapdf): the PDF/A and
# PDF/UA validator of tests/pdf.
bash scripts/verapdf.sh >/dev/null || warn "veraPDF could not be installed: tests/pdf will fail"
# shellcheck disable=SC1091 # a file of the system, not of the repository
. /etc/os-release 2>/dev/null || true
if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
  warn "this is ${PRETTY_NAME:-an unknown system}, not Debian 12 (bookworm), the one tested"
fi
if [ "$(id -u)" -ne 0 ]; then
  warn "not root: the read-only store fault test (chattr +i, tests/security/test_faults.py) will fail"
fi
go_version="$(go env GOVERSION 2>/dev/null || true)"  # e.g. go1.26.8
IFS=. read -r go_major go_minor _ <<<"${go_version#go}."
if [ "${go_major:-0}" -lt 1 ] 2>/dev/null || { [ "${go_major:-0}" -eq 1 ] && [ "${go_minor:-0}" -lt 26 ]; }; then
  warn "Go >= 1.26 is not on PATH (found: ${go_version:-none}): the Kubernetes and Gotenberg" \
    "tiers and the S3 store tests, which build their binaries with it from the Go module" \
    "proxy, will fail"
fi
echo "bootstrap: ready (.venv/bin/gendoc)"
