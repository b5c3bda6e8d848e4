# chatstream: `make demo` runs the platform with demo traffic, `make test` runs the tests.
# Both set up everything themselves: system prerequisites (Java 17, Maven, PostgreSQL, Node.js,
# Chromium, when missing and we may install them), the virtual environment, the dashboard's
# bundle, and the local services.

PYTHON ?= python3
VENV ?= .venv
UV_VERSION ?= 0.13.9
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DASHBOARD := gateway/dashboard
DASHBOARD_SOURCES := $(wildcard $(DASHBOARD)/src/*) $(DASHBOARD)/build.mjs

.PHONY: help setup system-deps venv dashboard test test-unit test-integration demo up down status lint docs clean

help:
	@echo "make demo    - set up, start the local stack and the platform with demo traffic"
	@echo "make test    - set up and run every test (unit + integration against real services)"
	@echo "make up|down|status - the local stack only"

setup: system-deps venv dashboard

system-deps:
	@bash infra/bootstrap/system-deps.sh

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python -q -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -e .
	@touch $(STAMP)

# The dashboard the gateway serves at /dashboard: npm ci when the lock file changed, a build
# (esbuild, into the git-ignored dist/) when a source changed.
dashboard: $(DASHBOARD)/dist/.built

$(DASHBOARD)/node_modules/.installed: $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(DASHBOARD)/dist/.built: $(DASHBOARD)/node_modules/.installed $(DASHBOARD_SOURCES)
	cd $(DASHBOARD) && npm run --silent build
	@touch $@

test: setup lint
	$(BIN)/python -m pytest tests

test-unit: venv
	$(BIN)/python -m pytest tests/unit

test-integration: setup
	$(BIN)/python -m pytest tests/integration

demo: setup
	$(BIN)/chatstream demo

up: setup
	$(BIN)/chatstream infra up

down: venv
	$(BIN)/chatstream infra down

status: venv
	$(BIN)/chatstream infra status

lint: venv
	$(BIN)/python -m mypy chatstream infra pipelines gateway connectors jobs bench
	$(BIN)/lint-imports

docs: venv
	$(BIN)/chatstream schemas docs

clean:
	rm -rf $(VENV) $(DASHBOARD)/node_modules $(DASHBOARD)/dist
