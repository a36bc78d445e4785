# Each target builds (or refreshes) its own virtualenv from pyproject.toml first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all-loops test-pythons lint docs ci bench bench-fleet reliability rgw clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	touch $(STAMP)

demo: $(STAMP)  ## the main job: fetch a generated model from an embedded fake Hub
	$(BIN)/modelfetch demo

test: $(STAMP) rgw  ## the whole test suite: on asyncio, uvloop and trio where loops differ (tests/conftest.py), the fleet tests on radosgw
	$(BIN)/python -m pytest

test-all-loops: $(STAMP)  ## every async test on all three loops (CI runs it too; the fleet tests already do in `make test`)
	MODELFETCH_TEST_ALL_LOOPS=1 $(BIN)/python -m pytest -q -m 'not rgw'

PYTHONS ?= 3.11 3.12 3.13
PYENV_ROOT ?= $(HOME)/.pyenv

test-pythons:  ## the suite (without the Ceph fleet tests) on each supported Python pyenv has here
	@for v in $(PYTHONS); do \
	  py=$$(ls -d $(PYENV_ROOT)/versions/$$v.* 2>/dev/null | sort -V | tail -1)/bin/python; \
	  if [ ! -x "$$py" ]; then echo "== Python $$v: not installed here, skipped"; continue; fi; \
	  echo "== Python $$v ($$py)"; \
	  $$py -m venv .venv-$$v && .venv-$$v/bin/python -m pip install --quiet -e '.[dev]' \
	    && .venv-$$v/bin/python -m pytest -q -m 'not rgw' || exit 1; \
	done

rgw:  ## the Ceph packages the fleet tests run radosgw from (Debian, needs root; no-op when present)
	scripts/rgw install

bench: $(STAMP)  ## every benchmark scenario; writes docs/benchmarks.md and its plots
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.run

bench-fleet: $(STAMP) rgw  ## a fleet's cold start with and without a shared Ceph bucket (~5 min); writes docs/fleet-benchmark.md
	$(BIN)/python -m benchmarks.fleet

reliability: $(STAMP)  ## the reliability suite; regenerates docs/reliability.md from its counts
	MODELFETCH_RELIABILITY_REPORT=docs/reliability.md $(BIN)/python -m pytest -q tests/reliability

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict src
	$(BIN)/mypy --strict tests/guide  # the testing guide and server example, typed as a user's project

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

ci: lint test docs

clean:
	rm -rf $(VENV) .venv-3.* site .pytest_cache .mypy_cache .ruff_cache
