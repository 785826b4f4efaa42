# Two commands set everything up: `make run` and `make test`.
# Both create the virtualenv in .venv and install what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
DATA_DIR ?= $(HOME)/.local/share/skiff
PORT ?= 6443
NODES ?= 1

.PHONY: run test lint fuzz bench-api bench-podstartup bench-controllers bench-scheduler bench-streams clean

$(BIN)/python:
	@scripts/ensure-system-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/pip install -q -e '.[test,bench]'
	@touch $(BENCH_STAMP)

run: $(STAMP)
	@scripts/ensure-kubectl.sh
	$(BIN)/skiff up --data-dir $(DATA_DIR) --port $(PORT) --nodes $(NODES)

test: $(STAMP)
	@scripts/ensure-kubectl.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

fuzz: $(STAMP)
	$(BIN)/python -m pytest -q tests/fuzz

bench-api: $(BENCH_STAMP)
	$(BIN)/python bench/api/run.py

bench-podstartup: $(BENCH_STAMP)
	$(BIN)/python bench/podstartup/run.py

bench-controllers: $(BENCH_STAMP)
	$(BIN)/python bench/controllers/run.py

bench-scheduler: $(BENCH_STAMP)
	$(BIN)/python bench/scheduler/run.py

bench-streams: $(BENCH_STAMP)
	$(BIN)/python bench/streams/run.py

clean:
	rm -rf $(VENV) build *.egg-info
