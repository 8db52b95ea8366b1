#!/usr/bin/env bash
# Runs lint, types and the whole suite. pytest's exit code 5 ("no tests collected") is a
# failure here: a suite that silently collects nothing must not pass.
set -uo pipefail
cd "$(dirname "$0")/.."
# Lint and types first: a finding fails the run like a failing test.
bash scripts/lint.sh || { echo "test.sh: lint or types failed" >&2; exit 1; }
.venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; failing" >&2
  exit 1
fi
exit "$rc"
