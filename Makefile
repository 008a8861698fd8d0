# The two commands at the top of README.md: `make demo` and `make test`. Both start from nothing
# (Python 3.10+, JDK 17, Maven) and are safe to run twice.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What is tested, pinned with hashes (pyproject.toml keeps the ranges, for embedders): the venv is
# installed from it and reinstalled whenever it or pyproject.toml changes. `make lock` updates it.
LOCK := requirements.lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)

.PHONY: venv lock test test-fast test-slow test-browser lint browser-deps web demo down bench bench-incremental stack-up clean

venv: $(STAMP)
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*; touch $@

# Re-pin after a dependency changed in pyproject.toml: versions already locked are kept (uv
# prefers the output file's pins), new ones resolved; CPython 3.11+ on any platform. Then
# `make venv` installs it. `make lock UPGRADE=--upgrade` moves every pin to the newest allowed.
lock:
	@test -x $(BIN)/uv || $(MAKE) venv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
		--python-version 3.11 --custom-compile-command "make lock" $(UPGRADE) -q -o $(LOCK)

# Tests start what they need themselves (throw-away keyspace, local Ray, price simulator
# processes); the Cassandra node is started (or reused) first so its start-up is not a test's.
# `make test` is everything CI runs: lint and types, the default suite, then the slow tests
# (multi-node Ray and Cassandra, the browser) as a second step.
test: venv browser-deps
	$(BIN)/ledgerflow cassandra start
	$(MAKE) lint
	$(BIN)/python -m pytest -q -m "not slow"
	$(BIN)/python -m pytest -q -m slow

# The default suite alone (about 15 minutes here): what to run while developing.
test-fast: venv
	$(BIN)/ledgerflow cassandra start
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: venv browser-deps
	$(BIN)/ledgerflow cassandra start
	$(BIN)/python -m pytest -q -m slow

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests alone (tests/browser/, marked slow and browser).
test-browser: venv browser-deps
	$(BIN)/ledgerflow cassandra start
	$(BIN)/python -m pytest -q -m browser

# Debian's chromium for the browser tests (Playwright's own browser download is not used).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# Rebuild the web page into serve/static/ (committed; only needed after changing web/).
web:
	cd web && npm ci && npm run build

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

# An upload of a 600k-row history's last 30 days, tax checkpoints on vs off (benchmarks/INCREMENTAL.md)
bench-incremental: venv
	$(BIN)/ledgerflow cassandra start
	$(BIN)/python -m benchmarks.incremental

clean: down
	rm -rf $(VENV) .ledgerflow
