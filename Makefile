# docthemes: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-install only when the project's metadata changes, so a second `make run` installs nothing.
RUNTIME_STAMP := $(VENV)/.installed-runtime
CLUSTER_STAMP := $(VENV)/.installed-cluster
DEV_STAMP := $(VENV)/.installed-dev

export DOCTHEMES_RAW_DIR ?= data/raw
export DOCTHEMES_PROCESSED_DIR ?= data/processed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Deployment profile (docs/deploy.md): local (SQLite instance, one process) or cluster
# (PostgreSQL instance, Dask workers); it picks what is installed and the instance's dagster.yaml.
export DOCTHEMES_PROFILE ?= local
ifeq ($(DOCTHEMES_PROFILE),cluster)
INSTALLED := $(CLUSTER_STAMP)
INSTANCE_YAML := config/dagster-cluster.yaml
else
INSTALLED := $(RUNTIME_STAMP)
INSTANCE_YAML := config/dagster.yaml
endif

.PHONY: help run test test-fast lint format dev nightly-demo clean chromium postgresql instance

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(CLUSTER_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[cluster]'
	touch $@ $(RUNTIME_STAMP)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(CLUSTER_STAMP) $(RUNTIME_STAMP)

# The report's real-browser test needs headless Chromium (Debian package `chromium`).
CHROMIUM := $(shell command -v chromium 2>/dev/null)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
ifeq ($(CHROMIUM),)
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium
endif

# The cluster profile's integration test starts a real PostgreSQL server (Debian `postgresql`).
POSTGRES := $(wildcard /usr/lib/postgresql/*/bin/initdb)
postgresql:
ifeq ($(POSTGRES),)
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends postgresql
endif

# The profile's instance settings; copied again only when they differ (a profile switch).
instance:
	@mkdir -p $(DAGSTER_HOME)
	@cmp -s $(INSTANCE_YAML) $(DAGSTER_HOME)/dagster.yaml || cp $(INSTANCE_YAML) $(DAGSTER_HOME)/dagster.yaml

run: $(INSTALLED) instance ## Install if needed, then materialize every asset on $DOCTHEMES_RAW_DIR
	$(BIN)/docthemes run

test: $(DEV_STAMP) chromium postgresql lint ## Install if needed, lint, and run the whole test suite
	$(BIN)/pytest -n 2

test-fast: $(DEV_STAMP) ## The inner loop: lint, then every test that needs no model (no Dagster run)
	$(MAKE) lint
	$(BIN)/pytest -m "not model" -q

lint: $(DEV_STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(DEV_STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

dev: $(INSTALLED) instance ## Start the Dagster UI (webserver + daemon) on http://127.0.0.1:3000
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

nightly-demo: $(INSTALLED) instance ## Daemon + UI with a persistent DAGSTER_HOME; drop a file into data/raw and watch the sensor
	@echo "Dagster UI: http://127.0.0.1:3000  (Automation tab: schedule 'nightly', sensor 'raw_dir_sensor')"
	@echo "In another shell:  cp some_article.txt $(DOCTHEMES_RAW_DIR)/  -> a run starts within ~15 s"
	DOCTHEMES_SENSOR_INTERVAL_S=15 $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean: ## Remove generated tables and the local Dagster instance (keeps .venv)
	rm -rf $(DOCTHEMES_PROCESSED_DIR) $(DAGSTER_HOME)
