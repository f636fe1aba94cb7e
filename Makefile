# coinwire: `make run` starts the platform on embedded defaults; `make test` lints, type-checks and runs the whole suite.
# The interpreter the venvs are made with: the distribution's CPython when it is 3.11 or newer and
# has venv, else python3 from PATH; `make PYTHON=...` picks another (then `make clean` first, as
# an existing .venv is kept). Debian and Ubuntu build theirs with PGO and LTO and link it
# statically; a plain source build (pyenv's default) has neither and calls into a shared
# libpython. The same code ran its order path in 9% fewer instructions and its matching core
# ~15% faster on Debian's 3.11 than on pyenv's 3.11 (docs/BENCHMARKS.md, notes).
ifndef PYTHON  # probed once (a recursive `?=` would run the probe at every use)
PYTHON := $(shell for p in /usr/bin/python3 python3; do $$p -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; exit 0; }; done; echo python3)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
PEERS_REQS := benchmarks/peers/requirements.txt benchmarks/peers/constraints.txt
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest-xdist workers for `make test`: twice the CPUs, as most tests wait on servers, subprocesses and
# sockets rather than compute (README, "Two commands"). PYTEST_WORKERS=0 runs the suite in one process.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) * 2 )))

.PHONY: run test lint bench install dev peers web clean deploy-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
dev: $(STAMP)

# Peer backtesters (backtrader, backtesting.py, vectorbt, nautilus_trader) in their own venv, for
# tests/engine/test_peer_equivalence.py and benchmarks/backtest_sma.py; coinwire never imports them.
$(PEERS_STAMP): $(PEERS_REQS)
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/pip install --quiet -r benchmarks/peers/requirements.txt -c benchmarks/peers/constraints.txt
	touch $@

peers: $(PEERS_STAMP)

# The web dashboard (src/coinwire/web): npm ci when the lockfile changes, a Vite build when any
# source changes; the build (dist/, git-ignored) is package data that `coinwire serve` serves at /.
WEB := src/coinwire/web
WEB_SRC := $(shell find $(WEB)/src -type f) $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json $(WEB)/package.json
$(WEB)/node_modules/.installed: $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	touch $@
$(WEB)/dist/index.html: $(WEB)/node_modules/.installed $(WEB_SRC)
	cd $(WEB) && npm run build
	touch $@

web: $(WEB)/dist/index.html

run: $(VENV)/.installed web
	$(BIN)/coinwire serve --host $(HOST) --port $(PORT)

# The linter and the type checker (configured in pyproject.toml) run before the suite, and
# either failing fails `make test`; mypy keeps its cache in .mypy_cache, so a re-run takes seconds.
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# --dist loadfile: a module's tests stay on one worker, so a module-scoped server starts once
test: lint peers web
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# deploy/ alone (docs/DEPLOYMENT.md): the Kubernetes base rendered and checked, compose and the Dockerfile parsed, the
# proxy's config run in nginx; `make test` runs the same tests
deploy-check: $(STAMP)
	$(BIN)/python -m pytest -q tests/deploy

bench: $(STAMP) peers
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) $(PEERS_VENV) $(WEB)/node_modules $(WEB)/dist build *.egg-info src/*.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
