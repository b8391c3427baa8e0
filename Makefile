# Client VPN Autopilot: one Makefile for developers and CI. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install browser test lint format demo bench local clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11+) on PATH, or run make PYTHON=python3.X"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the product, the local cloud and the dev tools

browser: ## Install Debian's chromium for the browser tests (when missing)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

test: $(STAMP) browser ## Run the whole test suite (unit, local cloud, workflow, end to end, browser)
	$(BIN)/python -m pytest -q

lint: $(STAMP) ## ruff, ruff format --check, mypy and cfn-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --explicit-package-bases localcloud cvpn layers/shared/python functions
	$(BIN)/cfn-lint template.yaml

format: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP) ## Run the demo on the local cloud
	$(BIN)/cvpn demo

bench: $(STAMP) ## Print the benchmark figures (nothing asserted)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/monitoring_parse_detect.py
	$(BIN)/python bench/intake.py

local: $(STAMP) ## Serve the local cloud with template.yaml deployed (Ctrl-C to stop)
	$(BIN)/cvpn local up

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam .localcloud
