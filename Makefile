# make run: set up .venv if needed, then run the whole workflow on the embedded demo data.
# make test: set up .venv if needed, then run the test suite.
# make test-fast: the unit tests alone, without the tests that run Snakemake, pip or SLURM.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SNAKEMAKE := $(VENV)/bin/snakemake --cores all --resources gpu=1 --show-failed-logs --rerun-incomplete

.PHONY: setup run report test test-fast gpu-check lint clean

setup: $(STAMP)

# Reinstall only when the project's requirements change.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --progress-bar off -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(SNAKEMAKE) --configfile config.yaml
	@echo "Accuracy table: results/tables/accuracy.md (CSV: results/tables/accuracy.csv, plot: results/plots/accuracy.png)"

# An HTML report of the last run: tables, plots, generated examples and each rule's runtime.
report: $(STAMP)
	$(VENV)/bin/snakemake --report results/report.html --configfile config.yaml
	@echo "Report: results/report.html"

# The whole suite in two worker processes, as make test-fast runs it (the workflow tests spend much of their time
# starting Python or waiting on SLURM, which the other worker fills); the 20 slowest tests are listed at the end.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile --durations=20

# The unit tests: those marked slow (they run Snakemake, pip or a local SLURM) left out. Two worker processes
# (pytest-xdist), each given whole test files, which keeps each file's imports to one process; the synthetic
# datasets are written once for both. One OpenMP thread per process: the test networks are tiny, and on a busy
# machine a second thread mostly waits for the first.
test-fast: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -m "not slow" -n 2 --dist loadfile

# On a machine with CUDA: the tiny workflow with every GPU rule on the GPU, the generation benchmark, seeds
# stacked, and the real study's projection unguided and guided, a summary line each (benchmarks/gpu_check.py).
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py

# Python with ruff, rule files with snakefmt, the workflow with snakemake --lint (which exits 0 on lints).
lint: $(STAMP)
	$(VENV)/bin/ruff check src scripts tests benchmarks
	$(VENV)/bin/ruff format --check src scripts tests benchmarks
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules
	@out=$$($(VENV)/bin/snakemake --lint 2>&1); echo "$$out"; ! echo "$$out" | grep -q "^Lints for"

clean:
	rm -rf results .snakemake
