# coinwire: `make run` starts the platform on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
PEERS_REQS := benchmarks/peers/requirements.txt benchmarks/peers/constraints.txt
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench install dev peers clean

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

run: $(VENV)/.installed
	$(BIN)/coinwire serve --host $(HOST) --port $(PORT)

test: $(STAMP) peers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP) peers
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) $(PEERS_VENV) build *.egg-info src/*.egg-info .pytest_cache .hypothesis
