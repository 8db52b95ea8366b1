#!/bin/sh
# Installs the Debian packages listed in the given files (one per line, '#'
# comments), skipping those already installed. Used by the images' Dockerfiles
# and by scripts/bootstrap.sh, so the packages CI tests with are the images'.
set -eu
wanted=""
for list in "$@"; do
  wanted="$wanted $(sed -e 's/#.*//' "$list" | tr -s ' \n' ' ')"
done
missing=""
for p in $wanted; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing Debian packages:$missing" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
if [ "${GENDOC_IMAGE_BUILD:-}" = 1 ]; then
  $SUDO apt-get clean
  $SUDO rm -rf /var/lib/apt/lists/*
fi
