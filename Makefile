# `make run` and `make test` set up .venv on first use (pip install of this project), then
# run the workflow or the tests. Override the interpreter with `make PYTHON=python3.12 ...`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SNAKEMAKE := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake

.PHONY: setup run smoke test lint report clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(SNAKEMAKE) --cores all
	$(SNAKEMAKE) --report results/report.html

# The HTML report of a finished run (every table and figure, captioned): results/report.html.
report: setup
	$(SNAKEMAKE) --report results/report.html

smoke: setup
	$(SNAKEMAKE) --cores all --config preset=smoke results_dir=results/smoke
	$(SNAKEMAKE) --report results/smoke/report.html --config preset=smoke results_dir=results/smoke

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

# Speed of the suite's own code (benchmarks/harness.py): a fresh smoke run for its wall time
# (a few minutes) and measurements on 2 cores, 20 min for both (--time-budget), then SRDA's PSNR
# after equal quick-preset steps in fp32 and bf16 (3 seeds each, ~10 min with bf16 hardware); writes
# results/bench/bench.json and bench.md. On a CPU without native bf16 (AVX2 only) the harness
# skips the emulated-bf16 work by itself (the precision check, the bf16 tuned candidates) and
# says so there; BENCH_ARGS="--run-smoke --run-precision --bf16 native" runs it all the same.
# Other options through BENCH_ARGS, e.g.
# make bench BENCH_ARGS="--time-budget 600 --smoke-results results/smoke" (or --tiny).
BENCH_ARGS ?= --run-smoke --run-precision
bench: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/harness.py $(BENCH_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(SNAKEMAKE) --lint --config preset=smoke

clean:
	rm -rf results/smoke .snakemake

# A one-node SLURM cluster on this machine (scripts/slurm_local.sh: apt-get installs slurm-wlm
# and munge if missing; needs root), then the smoke preset for one dataset through
# profiles/slurm and locally, Table I compared (tests/test_slurm.py). The test starts the
# daemons and stops the ones it started.
CLUSTER_STAMP := $(VENV)/.cluster-stamp

$(CLUSTER_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,cluster]'
	touch $(CLUSTER_STAMP)

.PHONY: test-slurm
test-slurm: $(CLUSTER_STAMP)
	scripts/slurm_local.sh install
	SRDA_TEST_SLURM=1 PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -s -m slurm tests/test_slurm.py
