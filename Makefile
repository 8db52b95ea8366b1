# The README's two commands are `make demo` and `make test`; both install what
# they need (scripts/bootstrap.sh is idempotent and fast on a warm machine).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= out

.PHONY: bootstrap demo test test-unit up bench soak lint clean

bootstrap:
	@bash scripts/bootstrap.sh

## Start the local stack, render the bundled example invoice to $(OUT)/invoice.pdf, stop.
demo: bootstrap
	@bash scripts/demo.sh "$(OUT)"

## Every test tier: unit, integration (real LibreOffice, real HTTP on 127.0.0.1).
test: bootstrap
	@bash scripts/test.sh

test-unit: bootstrap
	$(PY) -m pytest -q tests -m "not libreoffice and not kubernetes"

## Run the local stack in the foreground (Ctrl-C stops it).
up: bootstrap
	$(VENV)/bin/gendoc up

bench: bootstrap
	$(VENV)/bin/gendoc bench --json bench-results.json

## 5,000 conversions through the stack; figures to docs/soak.json (make test runs 300).
soak: bootstrap
	GENDOC_SOAK_CONVERSIONS=5000 GENDOC_SOAK_REPORT=docs/soak.json \
	  $(PY) -m pytest -q -s tests/security/test_soak.py

## ruff over the tree and mypy --strict over the four packages; fails on any finding.
lint: bootstrap
	@bash scripts/lint.sh

clean:
	rm -rf $(OUT) .pytest_cache
