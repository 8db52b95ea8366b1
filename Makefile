# The README's two commands are `make demo` and `make test`; both install what
# they need (scripts/bootstrap.sh is idempotent and fast on a warm machine).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= out

.PHONY: bootstrap demo test test-unit up bench soak lint clean playground-screenshot

bootstrap:
	@bash scripts/bootstrap.sh

## Start the local stack, render the bundled examples to $(OUT)/invoice.pdf and
## $(OUT)/letter.pdf (sub-template, locale filters, $html), stop.
demo: bootstrap
	@bash scripts/demo.sh "$(OUT)"

## Every test tier: unit, integration (real LibreOffice, real HTTP on 127.0.0.1).
test: bootstrap
	@bash scripts/test.sh

test-unit: bootstrap
	$(PY) -m pytest -q tests -m "not libreoffice and not kubernetes and not cluster"

## The README's picture of the playground, taken by its browser test (tests/ui).
playground-screenshot: bootstrap
	GENDOC_UI_SHOTS=$(OUT)/ui $(PY) -m pytest -q tests/ui/test_playground.py -k readme_screenshot
	cp $(OUT)/ui/playground.png docs/images/playground.png

## Run the local stack in the foreground (Ctrl-C stops it).
up: bootstrap
	$(VENV)/bin/gendoc up

## Every figure of the README's performance section, Gotenberg included: the converter
## alone, the stack beside its baselines and peers, document sizes; then the README's
## tables and docs/bench/sizes.svg are written from the JSON (about 25 min, plus one
## Gotenberg build the first time). QUICK=1: short runs (about 10 min) into
## $(OUT)/bench-quick/, with a copy of the README, to check that everything runs.
BENCH_DIR := $(if $(QUICK),$(OUT)/bench-quick,docs/bench)
BENCH_README := $(if $(QUICK),$(BENCH_DIR)/README.md,README.md)
bench: bootstrap
	@mkdir -p $(BENCH_DIR)
	$(if $(QUICK),cp README.md $(BENCH_README))
	$(VENV)/bin/gendoc bench converter $(if $(QUICK),--quick) --json $(BENCH_DIR)/converter.json
	$(VENV)/bin/gendoc bench $(if $(QUICK),--quick) --json $(BENCH_DIR)/stack.json
	$(VENV)/bin/gendoc bench report --readme $(BENCH_README) \
	  --converter-json $(BENCH_DIR)/converter.json --stack-json $(BENCH_DIR)/stack.json

## 5,000 conversions through the stack; figures to docs/soak.json (make test runs 300).
soak: bootstrap
	GENDOC_SOAK_CONVERSIONS=5000 GENDOC_SOAK_REPORT=docs/soak.json \
	  $(PY) -m pytest -q -s tests/security/test_soak.py

## ruff over the tree and mypy --strict over the four packages; fails on any finding.
lint: bootstrap
	@bash scripts/lint.sh

clean:
	rm -rf $(OUT) .pytest_cache
