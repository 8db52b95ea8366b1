#!/usr/bin/env bash
# Installs axe-core (the accessibility engine the playground's browser tests inject
# into the page, tests/ui) from the npm registry into ~/.cache/gendoc, idempotently.
# Only the tests use it: the service never serves it. Prints the path of axe.min.js.
set -euo pipefail
version=4.14.1
dir="${GENDOC_CACHE:-$HOME/.cache/gendoc}/axe-core-$version"
script="$dir/node_modules/axe-core/axe.min.js"
if [ ! -f "$script" ]; then
  if ! command -v npm >/dev/null; then  # Debian's npm, where no Node.js came with the machine
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends npm >&2
  fi
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --silent --save-exact "axe-core@$version" >&2
fi
echo "$script"
