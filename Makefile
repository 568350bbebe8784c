# The project's vocabulary: setup demo test lint typecheck bench train eval deploy delete.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .tools
PY := $(VENV)/bin/python
# torch comes first and alone: pick the CPU wheel index on your machine with
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
TORCH_INDEX ?=
AWS_REGION ?= us-east-1
export AWS_REGION
export SAM_CLI_TELEMETRY := 0

.PHONY: setup tools demo test test-unit test-integration lint typecheck bench cost train eval openapi deploy delete clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt functions/shared/pyproject.toml client/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || \
	  $(PY) -m pip install -q $(TORCH_SPEC) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

tools: $(TOOLS)/.installed $(TOOLS)/checkov/.installed

$(TOOLS)/.installed: requirements-tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q -r requirements-tools.txt
	npm install --no-save --no-audit --no-fund --prefix $(TOOLS)/npm asl-validator@4.0.0
	touch $@

$(TOOLS)/checkov/.installed: requirements-checkov.txt
	test -x $(TOOLS)/checkov/bin/python || $(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install -q -r requirements-checkov.txt
	touch $@

demo: setup
	$(PY) -m local.demo

test: setup tools lint typecheck
	$(PY) -m pytest tests

test-unit: setup
	$(PY) -m pytest tests/unit

test-integration: setup
	$(PY) -m pytest tests/integration tests/e2e

lint: setup tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --region $(AWS_REGION)
	$(TOOLS)/npm/node_modules/.bin/asl-validator $(addprefix --json-path ,$(wildcard statemachine/*.asl.json))
	$(TOOLS)/bin/hadolint functions/segment/Dockerfile
	$(TOOLS)/checkov/bin/checkov -f template.yaml --config-file .checkov.yaml

typecheck: setup
	$(VENV)/bin/mypy functions/shared/segjob_core functions/api/job_api functions/segment/segmentation functions/notify/job_notify client/segjob local

bench: setup
	$(PY) bench/segment_bench.py
	$(PY) bench/job_bench.py

cost: setup
	$(PY) bench/cost.py

train: setup
	$(PY) training/train.py --epochs $${EPOCHS:-20}

eval: setup
	$(PY) training/evaluate.py

openapi: setup
	PYTHONPATH=functions/api:functions/shared $(PY) -m job_api.openapi > docs/openapi.json

deploy:
	sam build --parallel
	sam deploy --guided

delete:
	sam delete

clean:
	rm -rf out build .aws-sam .local-state .pytest_cache .ruff_cache .mypy_cache
