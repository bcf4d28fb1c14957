# Two commands for a fresh machine with Python 3.11+, git and make:
#   make demo   install bunsui into .venv and run the demo on the embedded default
#   make test   install bunsui with dev extras into .venv and run the whole test suite

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_HOME ?= .demo-home

.PHONY: demo test install install-dev lint bench clean eval train-error-model

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Non-editable on purpose: tests and demo run the package as users install it.
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet ".[dbt]"

install-dev: $(BIN)/python
	$(BIN)/python -m pip install --quiet ".[dev]"

demo: install
	rm -rf $(DEMO_HOME)
	BUNSUI_HOME=$(CURDIR)/$(DEMO_HOME) PATH=$(CURDIR)/$(BIN):$$PATH bash examples/demo.sh

test: install-dev
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .

# Every script runs even when one misses its target; the exit code says whether any did.
bench: install-dev
	status=0; for script in tests/benchmarks/bench_*.py; do $(BIN)/python $$script || status=1; done; exit $$status

clean:
	rm -rf $(VENV) $(DEMO_HOME) build dist .pytest_cache .ruff_cache

# The recovery scorecard: every agent scenario and chaos kind, RUNS times from SEED.
SEED ?= 1
RUNS ?= 3
.PHONY: chaos
chaos: install-dev
	$(BIN)/python -m tests.ai.scorecard --seed $(SEED) --runs $(RUNS) --json chaos-scorecard.json

# Diagnosis accuracy on held-out families (leave-one-family-out over tests/data/errors):
# per layer and total, confusion matrix, UNKNOWN rate, calibration. Minutes, not seconds.
# EVAL_ARGS="--also fam1,fam2 [--also ...]" repeats the report for those families alone;
# EVAL_ARGS="--holdout tests/data/errors-holdout" measures the held-out set instead (one model).
eval: install-dev
	OMP_NUM_THREADS=1 $(BIN)/python -m tests.eval.diagnosis $(EVAL_ARGS)

# Retrain the shipped error model (src/bunsui_core/diagnosis/error_model.npz) on the corpus.
train-error-model: install-dev
	OMP_NUM_THREADS=1 $(BIN)/python -m bunsui_core.diagnosis.training
