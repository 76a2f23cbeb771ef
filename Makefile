# Every target sets itself up from nothing: a virtual environment in .venv with what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check bench chaos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# compat: the checkout itself goes on sys.path, so the harness (not part of the wheel) is
	# importable by the `orchestrator` command too (`orchestrator demo|bench|chaos`)
	$(BIN)/pip install --quiet -e '.[dev,bench]' --config-settings editable_mode=compat
	touch $(STAMP)

## run: the demo on embedded defaults (embedded Redis unless REDIS_URL is set, the emulator, ingress, workers)
run: $(STAMP)
	$(BIN)/orchestrator demo

## test: the whole suite (embedded Redis unless REDIS_URL is set)
test: $(STAMP)
	$(BIN)/pytest

## check: lint and types
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/orchestrator bench client

chaos: $(STAMP)
	$(BIN)/orchestrator chaos

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
