# Quick start on a fresh Debian machine: `make demo`, then `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: install demo test pytest lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## Start the real topology on embedded defaults, submit the examples, print a summary, stop.
demo: install
	$(BIN)/postroom demo

## Lint, type-check and run the whole suite against private Redis, PostgreSQL, SMTP and S3.
test: lint pytest

pytest: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check postroom tests bench
	$(BIN)/ruff format --check postroom tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix postroom tests bench
	$(BIN)/ruff format postroom tests bench

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
