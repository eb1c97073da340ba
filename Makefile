# The two commands: `make run` (the whole gateway, locally) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.installed
STAMP_NPM := node_modules/.installed

.PHONY: run test lint deps chromium bench clean

run: deps
	$(PY) -m gateway.dev.run

test: deps chromium
	$(PY) -m pytest $(PYTEST_ARGS)

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo --no-cache

deps: $(STAMP_PY) $(STAMP_NPM)

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP_PY): $(VENV)/bin/python requirements.txt requirements-dev.txt
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(STAMP_NPM): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium for the browser tests (Playwright's own browser download does not work here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Install Debian's chromium package (sudo apt-get install chromium) for the browser tests"; exit 1; fi; }

clean:
	rm -rf var staticfiles

# Benchmarks (bench/README.md): each starts its own anvil, database, queue, workers and beat, and stops them.
.PHONY: bench-settlement bench-kill bench-reorg bench-quotes bench-screening bench-api bench-load bench-dashboard bench-latency bench-advance
bench-settlement: deps
	$(PY) -m bench.settlement $(BENCH_ARGS)

# funded -> completed through the real pipeline at 20/s and 200/s, beside the chain's own floor (inclusion + 2 blocks).
bench-latency: deps
	$(PY) -m bench.latency $(BENCH_ARGS)

# The screening step alone, in process: CPU, wall and SQL per transfer, one by one and batched (--baseline REV compares).
bench-advance: deps
	$(PY) -m bench.advance $(BENCH_ARGS)

bench-kill: deps
	$(PY) -m bench.kill_campaign $(BENCH_ARGS)

# Reorgs of depth 1-5 at seeded moments during 2,000 payouts; then deeper than finality, measured apart.
bench-reorg: deps
	$(PY) -m bench.reorg $(BENCH_ARGS)

bench-quotes: deps
	$(PY) -m bench.quotes $(BENCH_ARGS)

bench-api: deps
	$(PY) -m bench.bench_api $(BENCH_ARGS)

# A steady mixed load (quotes, transfers, card payments, status polls) through gunicorn and real workers.
bench-load: deps
	$(PY) -m bench.load $(BENCH_ARGS)

# Admin home (the operations dashboard) on a seeded million transfers, in a database of its own dropped at the end.
bench-dashboard: deps
	$(PY) -m bench.dashboard $(BENCH_ARGS)

# schemathesis against the live API schema (tests/payments/test_schemathesis.py) at ten times CI's examples.
.PHONY: test-schema-deep
test-schema-deep: deps
	SCHEMATHESIS_EXAMPLES=500 $(PY) -m pytest -q -s -p no:logging tests/payments/test_schemathesis.py

# The ledger state machine (tests/payments/test_money_machine.py) at ten times CI's examples, longer runs: nightly-style.
.PHONY: test-money-deep
test-money-deep: deps
	LEDGER_MACHINE_EXAMPLES=50000 LEDGER_MACHINE_STEPS=30 $(PY) -m pytest -q tests/payments/test_money_machine.py

# Pure Python, no servers: name matching against a generated 40,000-name list.
bench-screening: deps
	$(PY) -m bench.screening $(BENCH_ARGS)
