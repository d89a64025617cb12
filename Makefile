# Everything a developer or CI needs, from a fresh clone: Python 3.11+, Java 17+ and Maven on PATH.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install promtool demo tour season test check lint unit integration faults bench bench-quick bench-profile bench-parse bench-router kafka-up kafka-down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## demo: the main job: local Kafka + the whole hub fed by a simulated season (README quick start, 1st command)
demo: install
	$(BIN)/hub simulate --pilgrims 2000

## tour: the hub on a handful of hand-made feeds from each agency, explained step by step
tour: install
	$(BIN)/hub demo

## season: a full season of 10,000 pilgrims (several minutes)
season: install
	$(BIN)/hub simulate --pilgrims 10000 --seed 7

## promtool: Prometheus' metric linter, from Debian (or built from the Go module proxy); tests use it
promtool:
	scripts/install-promtool >/dev/null

## test: lint, type-check and every test against a real broker (README quick start, 2nd command; CI runs this)
test: lint promtool
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

## check: the fast loop: lint + unit tests (no broker)
check: lint promtool
	$(BIN)/pytest tests/unit -q

unit: install promtool
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

## faults: the full fault-injection suite (CI runs the reduced sizes as part of `make test`)
faults: install
	HUB_FAULTS_SCALE=full $(BIN)/pytest -m faults -s

## bench: the benchmark suite (Kafka perf tools, passthroughs, Quix Streams, the router; latency) -> bench/results/latest.md
bench: install
	$(BIN)/python -m bench.suite

bench-quick: install
	$(BIN)/python -m bench.suite --quick

bench-profile: install
	$(BIN)/python -m bench.profile_router

## bench-parse: parse throughput per connector against its bare parser/tokenizer (no Kafka)
bench-parse: install
	for b in bench_paxlst bench_airlines bench_immigration bench_ota bench_hotels bench_operators; do \
		echo "== $$b"; $(BIN)/python -m bench.$$b || exit 1; done

## bench-router: router throughput draining a backlog through 1, 3 and 10 subscriptions (local Kafka)
bench-router: install
	$(BIN)/python bench/bench_router.py

kafka-up: install
	$(BIN)/hub kafka up

kafka-down: install
	$(BIN)/hub kafka down

clean:
	-$(BIN)/hub kafka down
	rm -rf $(VENV) .venv-bench .kafka .pytest_cache .mypy_cache .ruff_cache
