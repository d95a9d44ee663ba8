# The two commands of the quick start: `make demo` and `make test`.
# Each creates .venv (if missing) and installs the package with its test extra first
# (again whenever pyproject.toml changes).
#   make test       the full suite: ruff, mypy, then every test (slow ones included)
#   make test-fast  the tests not marked slow (no ruff, no mypy)
#   make typecheck  mypy alone (its settings are in pyproject.toml)
#   make test-min   a smoke subset of the tests on the declared minimum versions
#                   (constraints-min.txt), in its own .venv-min
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENV_MIN := .venv-min
STAMP_MIN := $(VENV_MIN)/.installed
# Layers, a CNN's train step on XLA:CPU (so the compiler options are compiled), flax's
# serialisation in checkpoints, and the command line.
SMOKE := tests/test_core.py tests/test_conv.py tests/test_xla_options.py \
	tests/test_training_basics.py tests/test_checkpoint.py tests/test_cli.py

.PHONY: demo test test-fast test-min typecheck lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(STAMP_MIN): pyproject.toml constraints-min.txt
	test -x $(VENV_MIN)/bin/python || $(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_MIN)/bin/python -m pip install --quiet -c constraints-min.txt -e '.[test]'
	touch $(STAMP_MIN)

demo: $(STAMP)
	$(BIN)/python -m jaxnets demo

test: $(STAMP)
	$(BIN)/ruff check jaxnets tests benchmarks examples
	$(BIN)/ruff format --check jaxnets tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow"

# matplotlib before 3.10.x calls pyparsing's old camelCase names, which pyparsing 3.3
# deprecates: a warning at import, which the suite's "warnings are errors" would fail on.
test-min: $(STAMP_MIN)
	$(VENV_MIN)/bin/python -m pip freeze --exclude-editable | grep -iE '^(jax|jaxlib|flax|optax|numpy|scikit-learn|matplotlib|tqdm|tensorboardX|chex|pytest|pytest-xdist|ruff|mypy)=='
	$(VENV_MIN)/bin/ruff check jaxnets tests benchmarks examples
	$(VENV_MIN)/bin/ruff format --check jaxnets tests benchmarks examples
	$(VENV_MIN)/bin/python -m pytest -n 2 \
		-W ignore::DeprecationWarning:matplotlib._fontconfig_pattern \
		-W ignore::DeprecationWarning:matplotlib._mathtext $(SMOKE)

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
	rm -rf $(VENV) $(VENV_MIN) runs .pytest_cache .mypy_cache
