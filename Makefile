# Everything installs into ./.venv from uv.lock; the only prerequisite is Python 3.11 with pip.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen --no-sync
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install lint test test-all bench demo clean

$(UV):
	$(PYTHON) -m pip install --user --quiet uv || $(PYTHON) -m pip install --user --quiet --break-system-packages uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

install: .venv/.synced

lint: install
	$(RUN) ruff check lake tasks flows tests bench
	$(RUN) ruff format --check lake tasks flows tests bench
	$(RUN) mypy

test: lint
	$(RUN) pytest

test-all: install
	$(RUN) pytest -m 'not live'

bench: install
	$(RUN) python -m bench

demo: install
	$(RUN) cryptolake demo

clean:
	rm -rf .venv data .prefect .pytest_cache .mypy_cache .ruff_cache
