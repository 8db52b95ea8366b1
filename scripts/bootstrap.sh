#!/usr/bin/env bash
# Installs everything gendoc needs on a fresh Debian machine of this kind,
# idempotently: Debian packages (LibreOffice, its Python bridge, fonts, tini,
# poppler), then a venv in .venv made from Debian's /usr/bin/python3 with
# --system-site-packages (the only interpreter that can import `uno`), then
# the project in editable mode. Safe to run again; a warm machine takes seconds.
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
echo "bootstrap: ready (.venv/bin/gendoc)"
