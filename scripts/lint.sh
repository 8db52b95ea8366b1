#!/usr/bin/env bash
# ruff over the whole tree, mypy --strict (pyproject.toml) over the four
# packages. Any finding fails: make test runs this before pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m ruff check .
.venv/bin/python -m mypy src/gendoc service/gendoc_service converter_sidecar/gendoc_converter \
  operator/gendoc_operator
