# Client VPN Autopilot: one Makefile for developers and CI. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install browser test lint format demo bench local clean iam-report
.PHONY: lint-template lint-statemachines sam-validate sam-build checkov docs

# Names padded to the longest target; colour only on a terminal (not when piped, nor with NO_COLOR).
help: ## List the targets
	@if [ -t 1 ] && [ -z "$${NO_COLOR-}" ]; then on=$$'\033[36m'; off=$$'\033[0m'; else on=; off=; fi; \
	grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*?## "} \
		{name[NR] = $$1; text[NR] = $$2; if (length($$1) > width) width = length($$1)} \
		END {for (i = 1; i <= NR; i++) printf "  %s%-*s%s  %s\n", on, width, name[i], off, text[i]}'

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

lint: $(STAMP) lint-template lint-statemachines sam-validate sam-build checkov ## ruff, ruff format --check, mypy, and the deploy checks below
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --explicit-package-bases localcloud cvpn layers/shared/python functions bench

# ---- deploy checks: each tool is installed here, from PyPI, on first use
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PY313_VENV := .venv-py313
# The functions' runtime (template.yaml Globals: python3.13), `sam build` needs it on PATH: the first
# candidate that runs (a pyenv shim may exist without a 3.13 selected), as its real executable.
ifeq ($(origin PY313),undefined)
PY313_CANDIDATES := $(shell command -v python3.13 2>/dev/null) $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13)
PY313 := $(firstword $(foreach p,$(PY313_CANDIDATES),$(shell $(p) -c 'import sys; print(sys.executable)' 2>/dev/null)))
endif
SAM := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/sam

$(SAM_VENV)/.installed: tools/requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements-sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: tools/requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements-checkov.txt
	touch $@

$(PY313_VENV)/.installed: tools/requirements-py313-check.txt
	test -x $(PY313_VENV)/bin/python || $(PY313) -m venv $(PY313_VENV)
	$(PY313_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements-py313-check.txt
	touch $@

lint-template: $(STAMP) ## cfn-lint with the serverless rules (cfn-lint-serverless) on template.yaml
	$(BIN)/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules

lint-statemachines: $(STAMP) ## statelint on every statemachines/<area>/*.asl.json (URI check skipped for ${...} only)
	$(BIN)/python tools/check_state_machines.py

sam-validate: $(SAM_VENV)/.installed ## sam validate --lint (offline: needs no credentials, no network)
	$(SAM) validate --lint --template-file template.yaml

sam-build: $(SAM_VENV)/.installed ## sam build with python3.13, then import every built function (skipped without python3.13)
	@if [ -z "$(PY313)" ]; then echo "SKIPPED sam-build: no python3.13 (the functions' runtime) on PATH or in pyenv; sam build needs it"; exit 0; fi; \
	$(MAKE) --no-print-directory $(PY313_VENV)/.installed && \
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL PATH="$(dir $(PY313)):$$PATH" $(SAM) build && \
	$(PY313_VENV)/bin/python tools/check_built_artifacts.py .aws-sam/build

# checkov reads no Fn::ForEach (it skips the loop's resources and, on the loop entry, Globals too): it
# scans template.yaml with its loops expanded, as CloudFormation expands them.
checkov: $(STAMP) $(CHECKOV_VENV)/.installed ## checkov on template.yaml, loops expanded (each skip has its reason: tools/checkov.yaml or the resource Metadata)
	$(BIN)/python -m localcloud.language_extensions template.yaml .aws-sam/checkov/template.json
	$(CHECKOV_VENV)/bin/checkov --config-file tools/checkov.yaml

docs: $(STAMP) ## Redraw docs/*.mmd (architecture, state machines) from template.yaml and statemachines/
	$(BIN)/python tools/render_diagrams.py

format: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP) ## Run the demo on the local cloud
	$(BIN)/cvpn demo

# IAM_RECORDING=path reports a recording tests wrote (LOCALCLOUD_IAM_RECORDING=path pytest ...).
iam-report: $(STAMP) ## Per function: actions granted, actions called (the demo's, or IAM_RECORDING's), unused grants
	$(BIN)/python -m localcloud.iam_report $(IAM_RECORDING)

bench: $(STAMP) ## Print the benchmark figures (nothing asserted)
	$(BIN)/python bench/handler_imports.py
	$(BIN)/python bench/run.py
	$(BIN)/python bench/monitoring_parse_detect.py
	$(BIN)/python bench/monitoring_e2e.py
	$(BIN)/python bench/attack_to_alert.py
	$(BIN)/python bench/stack_cost.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/update_vs_replace.py
	$(BIN)/python bench/grants.py

local: $(STAMP) ## Serve the local cloud with template.yaml deployed (Ctrl-C to stop)
	$(BIN)/cvpn local up

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .venv-sam .venv-checkov .venv-py313 .pytest_cache .mypy_cache .ruff_cache .aws-sam .localcloud
