# Everything runs from .venv, created from nothing on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench conformance clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The main job on the embedded local default: no AWS account, no Pulumi CLI.
demo: $(STAMP)
	bash scripts/demo.sh

# The architecture and the layout first (seconds), then the suite on every core (a test module
# stays on one worker, so a module's emulator is started once).
test: lint
	$(BIN)/python -m pytest -n auto --dist loadfile

# Dependencies run one way (import-linter's contracts in pyproject.toml); ruff owns style and layout.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	PYTHONPATH=. $(BIN)/python scripts/bench_api_calls.py
	PYTHONPATH=. $(BIN)/python scripts/bench_emulator.py
	PYTHONPATH=. $(BIN)/python scripts/bench_sweep.py
	PYTHONPATH=. $(BIN)/python scripts/bench_code.py
	PYTHONPATH=. $(BIN)/python scripts/bench_persistence.py

# moto's own Batch test suite (from moto's sdist of the installed version, downloaded once) in its
# server mode against the emulator: fails if a test stock moto's server passes fails here; then
# Metaflow (pinned, in .venv-metaflow) running examples/metaflow/ on the lab stack in the emulator
# (a few minutes; CI runs it before make test).
conformance: $(STAMP)
	PYTHONPATH=. $(BIN)/python scripts/conformance.py --check --report conformance.json
	PYTHONPATH=. $(BIN)/python scripts/metaflow_conformance.py --report conformance-metaflow.json

clean:
	rm -rf $(VENV) .pytest_cache
