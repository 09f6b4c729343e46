# Everything installs into ./.venv from uv.lock; the only prerequisite is Python 3.11 with pip.
SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH, else the uv module installed with pip (works for system, user and venv installs).
UV ?= $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen --no-sync
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install lint test test-all bench demo clean

.venv/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv \
		|| $(PYTHON) -m pip install --quiet --user uv \
		|| $(PYTHON) -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --frozen --python $(PYTHON)
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
