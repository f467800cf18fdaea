# Two commands do all set-up: `make run` (full rebuild) and `make test`.
# Both create .venv from the pinned lock first; nothing else needs to be installed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 4

.PHONY: run test test-full lint fmt report audit bench lock clean

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest

# The slow tests (long MCMC, simulations) in their full form.
test-full: $(STAMP)
	SINGLEARM_FULL=1 $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

# Format the Snakefile and rule files in place (settings in pyproject.toml [tool.snakefmt]).
fmt: $(STAMP)
	$(BIN)/snakefmt Snakefile workflow/rules

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

audit: $(STAMP)
	$(BIN)/singlearm audit $(FILE)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_workflow.py

$(STAMP): envs/requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r envs/requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Re-pin every dependency (maintainers only; needs pip-tools).
lock:
	$(PYTHON) envs/lock.py

clean:
	rm -rf results/* data/processed/* .snakemake
