# The two commands at the top of README.md: `make demo` and `make test`. Both start from nothing
# (Python 3.10+, JDK 17, Maven) and are safe to run twice.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: venv test test-slow demo down bench stack-up clean

venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-*; touch $@

# Tests start what they need themselves (throw-away keyspace, local Ray, price simulator
# processes); the Cassandra node is started (or reused) first so its start-up is not a test's.
test: venv
	$(BIN)/ledgerflow cassandra start
	$(BIN)/python -m pytest -q -m "not slow"

# Multi-node tests (3-node Cassandra beside the shared node, Ray clusters, Ray Jobs): minutes each.
test-slow: venv
	$(BIN)/python -m pytest -q -m slow

# Local stack (Cassandra, price simulator, Ray head with dashboard, Serve), a generated 50k-row
# sample uploaded and watched to the end, then the gains summary and where to look.
demo: venv
	$(BIN)/ledgerflow stack demo

stack-up: venv
	$(BIN)/ledgerflow stack up

down:
	@if [ -x $(BIN)/ledgerflow ]; then $(BIN)/ledgerflow stack down; fi

bench: venv
	$(BIN)/ledgerflow cassandra start
	$(BIN)/python -m benchmarks

clean: down
	rm -rf $(VENV) .ledgerflow
