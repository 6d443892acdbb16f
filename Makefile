# `make run` and `make test` set up .venv on first use (pip install of this project), then
# run the workflow or the tests. Override the interpreter with `make PYTHON=python3.12 ...`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SNAKEMAKE := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake

.PHONY: setup run smoke test lint report clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(SNAKEMAKE) --cores all

smoke: setup
	$(SNAKEMAKE) --cores all --config preset=smoke results_dir=results/smoke

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(SNAKEMAKE) --lint --config preset=smoke

clean:
	rm -rf results/smoke .snakemake
