# One command to install and start the daemon, one to install and run the tests.
#   make run    venv + runtime deps, `monitor check`, then `monitor run` on config/monitor.yaml
#   make test   venv + test deps, then ruff, mypy and pytest (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-test run demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py monitor/_fastprint.c | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml setup.py monitor/_fastprint.c | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/monitor check
	$(BIN)/monitor run

demo: install
	$(BIN)/monitor demo

lint: install-test
	$(BIN)/ruff check monitor tests benchmarks fuzz
	$(BIN)/ruff format --check monitor tests benchmarks fuzz

typecheck: install-test
	$(BIN)/mypy

pytest: install-test
	$(BIN)/pytest

test: lint typecheck pytest

bench: install-test
	$(BIN)/python benchmarks/poll.py
	$(BIN)/python benchmarks/match.py
	$(BIN)/python benchmarks/dedup.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
