# Edgeflags: `make run` starts everything on a fresh machine; `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
MANAGE := $(BIN)/python manage.py
EDGEFLAGS_HOST ?= 127.0.0.1
EDGEFLAGS_PORT ?= 8000
EDGEFLAGS_STREAM_PORT ?= 8001
export EDGEFLAGS_HOST EDGEFLAGS_PORT EDGEFLAGS_STREAM_PORT

.PHONY: run test check install install-dev migrate demo port-free bench clean help

help:
	@echo "make run    - install, migrate, load demo data, start web + stream + worker + beat"
	@echo "              (make run TRAFFIC=1 adds synthetic clients so rollout numbers move)"
	@echo "make test   - run the whole test suite (PostgreSQL/Redis when reachable; needs npm"
	@echo "              for the pinned Unleash conformance cases)"
	@echo "make check  - ruff (lint + format), mypy, import-linter"
	@echo "make clean  - remove the venv, node_modules/ and the embedded-mode state in var/"

$(VENV)/.runtime-installed: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.runtime-installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed

# The Unleash client-specification cases the conformance suite runs (tests/conformance):
# an npm package pinned in package.json and package-lock.json, installed exactly as locked.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# A random secret for the embedded mode, generated once and kept (settings read it when
# SECRET_KEY is unset).
var/secret_key:
	@mkdir -p var && chmod 700 var
	@umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

# The bearer token /metrics asks of a scraper in the embedded mode (settings read it when
# EDGEFLAGS_METRICS_TOKEN is unset).
var/metrics_token:
	@mkdir -p var && chmod 700 var
	@umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@

migrate: install var/secret_key var/metrics_token
	@chmod 700 var
	$(MANAGE) migrate --no-input
	$(MANAGE) collectstatic --no-input --verbosity 0

demo: migrate
	$(MANAGE) load_demo

# A busy port is an error before anything starts (granian's SO_REUSEPORT would otherwise let a
# second server share the port silently); the Procfile's web command checks again.
port-free: install
	@$(BIN)/python -m ops.port_check $(EDGEFLAGS_HOST) $(EDGEFLAGS_PORT)
	@$(BIN)/python -m ops.port_check $(EDGEFLAGS_HOST) $(EDGEFLAGS_STREAM_PORT) EDGEFLAGS_STREAM_PORT

run: port-free demo
	@$(MANAGE) ensure_admin
	@rm -rf var/metrics  # samples of the processes of an earlier run
	@echo "Edgeflags: http://$(EDGEFLAGS_HOST):$(EDGEFLAGS_PORT)/admin/  (demo: /demo/, health: /readyz, API docs: /api/docs/)"
	@echo "Metrics:   curl -H \"Authorization: Bearer $$(cat var/metrics_token)\" http://$(EDGEFLAGS_HOST):$(EDGEFLAGS_PORT)/metrics"
	@echo "Changes:   http://$(EDGEFLAGS_HOST):$(EDGEFLAGS_STREAM_PORT)/stream/v1/flags (Server-Sent Events; bulk evaluations advertise it)"
	@echo "Starting web + stream + worker + beat$(if $(TRAFFIC), + traffic simulator,); Ctrl-C stops them all."
	EDGEFLAGS_DEMO="$${EDGEFLAGS_DEMO:-true}" PATH="$(BIN):$$PATH" $(BIN)/honcho start -f Procfile $(if $(TRAFFIC),,web stream worker beat) 2>&1 || test $$? -eq 130  # 130: stopped by Ctrl-C

test: install-dev node_modules/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install-dev
	@cat bench/README.md

clean:
	rm -rf $(VENV) var node_modules
