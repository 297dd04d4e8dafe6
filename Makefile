# Two-command quick start: `make plan` (install + run the default scenario) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: plan test lint clean

# An editable install compiles nothing: the package is compiled once here, so that each command
# skips ~50 ms of compiling it where the environment sets PYTHONDONTWRITEBYTECODE.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q planner
	touch $@

plan: $(BIN)/.installed
	$(BIN)/ecoplan plan

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check planner tests benchmarks
	$(BIN)/ruff format --check planner tests benchmarks
	$(BIN)/mypy planner

clean:
	rm -rf $(VENV) *.egg-info
