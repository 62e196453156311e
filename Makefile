# `make demo` and `make test` do every set-up step themselves: the virtualenv, the package with
# its dev dependencies and, where missing and possible, Debian's redis-server and chromium for
# the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)

.PHONY: help demo serve test test-oldest lint typecheck pytest bench redis-server chromium wrk clean

help:
	@echo "make demo         run the demo (embedded backend unless REDIS_URL is set)"
	@echo "make serve        run the example FastAPI app on http://127.0.0.1:8000"
	@echo "make test         lint, type-check and run the tests (fakeredis and a real redis-server)"
	@echo "make test-oldest  run the tests on the oldest supported redis-py ($(REDIS_PY_OLDEST))"
	@echo "make bench        run the benchmarks against a throwaway redis-server"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# $(call debian,COMMAND,WHAT IS SKIPPED WITHOUT IT[,ENVIRONMENT]): install Debian's package
# COMMAND when it is missing and we may (root with apt-get), else say what will be skipped.
define debian
	@if command -v $(1) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing $(1) from Debian's packages"; \
		apt-get update -qq && $(3) DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $(1) >/dev/null; \
	else echo "$(1) is missing and cannot be installed here: $(2)"; fi
endef

# The tests start their own server on a free port; RUNLEVEL=1 keeps the package from starting
# a daemon.
redis-server:
	$(call debian,redis-server,real-server tests will be skipped,RUNLEVEL=1)

# Chromium for the browser test of the example's chat page.
chromium:
	$(call debian,chromium,the browser test will be skipped)

demo: $(STAMP)
	$(PY) -m arketic_cache demo

# The example application (examples/app.py): embedded backend unless REDIS_URL is set.
serve: $(STAMP)
	$(PY) -m uvicorn examples.app:app --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

pytest: $(STAMP) redis-server chromium
	$(PY) -m pytest

test: lint typecheck pytest

# The oldest redis-py that pyproject.toml accepts, tested in a venv of its own pinned to it.
REDIS_PY_OLDEST := 7.4.0
OLDEST := .venv-oldest

$(OLDEST)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required" >&2; exit 1; }
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST)/bin/python -m pip install --quiet -e '.[dev]' 'redis==$(REDIS_PY_OLDEST)'
	@touch $@

# The suite on the oldest supported redis-py; it first shows (and checks) the version it runs on.
# The library's suite on the oldest redis-py, without what repeats the same redis-py calls
# through slower layers (the sentinel and cluster flavours and failovers, the FastAPI apps and
# browser, the CLI as processes, the README and typing checks): CI stays within its 15
# minutes, and every driver path still runs on both versions (the cluster drivers' through
# the cluster's own tests of keys, routing and redirections).
OLDEST_SKIPS := --ignore=tests/fastapi --ignore=tests/docs --ignore=tests/cluster \
	--ignore=tests/sentinel --ignore=tests/cli/test_process.py --ignore=tests/api/test_typing.py
test-oldest: $(OLDEST)/.installed redis-server
	$(OLDEST)/bin/python -c 'import redis, sys; print("redis-py", redis.__version__); \
		sys.exit(redis.__version__ != "$(REDIS_PY_OLDEST)")'
	$(OLDEST)/bin/python -m pytest -m "not sentinel and not cluster" $(OLDEST_SKIPS)
	$(OLDEST)/bin/python -m pytest tests/cluster/test_cluster_keys.py

# The peer libraries (cashews, aiocache, dogpile.cache, ...) are installed only for the benchmarks.
$(VENV)/.bench-installed: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@touch $@

# wrk, the load generator of the HTTP rows.
wrk:
	$(call debian,wrk,the HTTP rows will be skipped)

# BENCH_ARGS passes options on, e.g. `make bench BENCH_ARGS="--only cached"`.
bench: $(VENV)/.bench-installed redis-server wrk
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(OLDEST) .mypy_cache .pytest_cache .ruff_cache *.egg-info
