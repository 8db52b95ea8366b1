# Sourced by the scripts that build a tool once into ${GENDOC_CACHE:-$HOME/.cache/gendoc}
# (s3-server.sh, gotenberg.sh, k8s-tools.sh). The caller defines log().

GENDOC_CACHE="${GENDOC_CACHE:-$HOME/.cache/gendoc}"

# cache_lock DIR WHO: one builder at a time per cache directory (parallel test sessions
# may all call the same script); says so while it waits. The lock is held on fd 9
# until the script exits.
cache_lock() {
  mkdir -p "$1"
  exec 9>"$1/.lock"
  if ! flock -n 9; then
    log "another $2 is building into $1; waiting for it"
    flock 9
  fi
}

# need_go WHAT: a missing Go fails loudly; the tiers that need the tool are never skipped.
need_go() {
  command -v go >/dev/null || { log "go is not installed: $1 needs Go >= 1.26 on PATH"; exit 1; }
}
