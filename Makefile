# The two commands of the quick start: `make demo` and `make test`.
# Each creates .venv (if missing) and installs the package with its test extra first
# (again whenever pyproject.toml changes).
#   make test       the full suite: ruff, mypy, then every test (slow ones included)
#   make test-fast  the tests not marked slow (no ruff, no mypy)
#   make typecheck  mypy alone (its settings are in pyproject.toml)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast typecheck lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m jaxnets demo

test: $(STAMP)
	$(BIN)/ruff check jaxnets tests benchmarks examples
	$(BIN)/ruff format --check jaxnets tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow"

typecheck: $(STAMP)
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check jaxnets tests benchmarks examples

format: $(STAMP)
	$(BIN)/ruff format jaxnets tests benchmarks examples
	$(BIN)/ruff check --fix jaxnets tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_mlp.py --processes 5
	$(BIN)/python benchmarks/bench_cnn.py
	$(BIN)/python benchmarks/bench_lstm.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache
