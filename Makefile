# The project's vocabulary: setup demo test lint typecheck bench train eval model image-test deploy delete.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .tools
PY := $(VENV)/bin/python
# torch (the training toolchain, `make dev`) comes first and alone. Without TORCH_INDEX:
# on Linux without an NVIDIA GPU the CPU wheels (~1 GB less, no CUDA), when that index
# answers; otherwise PyPI's default build (CUDA on Linux x86_64).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
TORCH_INDEX ?=
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
AWS_REGION ?= us-east-1
export AWS_REGION
export SAM_CLI_TELEMETRY := 0
SAM := $(TOOLS)/bin/sam
DOCKER ?= docker
DEPLOY_FLAGS ?= --guided
# A python3.12 that runs: on PATH, else pyenv's (its shim on PATH may only name another version).
PYTHON312 ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12); do \
  "$$p" -c "" 2>/dev/null && command -v "$$p" && break; done)
# The region above is for the linters; deploys use the caller's own (profile or AWS_REGION).
DEPLOY_ENV := $(if $(filter file,$(origin AWS_REGION)),env -u AWS_REGION,)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: setup dev tools demo test test-unit test-integration lint typecheck bench cost train eval model image-test openapi deploy delete clean
.PHONY: local-up local-down local-env browser docs deploy-check

# setup: the runtime only (local mode, the functions, the client): all `make demo` needs.
setup: $(VENV)/.runtime

$(VENV)/.runtime: requirements.txt functions/segment/requirements.txt functions/shared/pyproject.toml client/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# dev: + the training toolchain (torch, Ultralytics, ONNX export) and the test tools.
dev: $(VENV)/.dev

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(MAKE) --no-print-directory torch
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

.PHONY: torch
torch:
ifneq ($(TORCH_INDEX),)
	$(PY) -m pip install -q $(TORCH_SPEC) --index-url $(TORCH_INDEX)
else
	if [ "$$(uname -s)" = Linux ] && ! command -v nvidia-smi >/dev/null && \
	   $(PY) -m pip install -q --timeout 10 --retries 0 $(TORCH_SPEC) --index-url $(TORCH_CPU_INDEX); then :; \
	else \
	  echo "torch: PyPI's default build (no CPU wheel index used or reachable)"; \
	  $(PY) -m pip install -q $(TORCH_SPEC); \
	fi
endif
	$(PY) -c "import torch; print('torch', torch.__version__, 'CUDA' if torch.version.cuda else 'CPU-only', 'build')"

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

# IMAGES="a.jpg b.png": your own images instead of samples/*.jpg
demo: setup
	$(PY) -m local.demo $(IMAGES)

# Local mode in the background (state and logs in .local-state/); see README "Run it yourself".
local-up: setup
	$(PY) -m local up --detach

local-down:
	@test -x $(PY) || exit 0; $(PY) -m local down

# eval "$$(make -s local-env)": segjob on PATH and pointed at the running local mode.
local-env:
	@test -x $(PY) || { echo "run make setup first" >&2; exit 1; }; $(PY) -m local env

# Debian's Chromium, for the test that opens `segjob results --html` pages; installed only when missing.
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

test: dev tools browser lint typecheck
	$(PY) -m pytest tests --ignore=tests/image

test-unit: dev
	$(PY) -m pytest tests/unit

test-integration: dev browser
	$(PY) -m pytest tests/integration tests/e2e

# The segment function's container image, built on a stand-in of the Lambda base image and
# run with the template's minimum memory, read-only, no network (tests/image/README.md).
image-test: dev
	bash tests/image/docker.sh
	$(PY) -m pytest tests/image -s

lint: dev tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --region $(AWS_REGION)
	$(TOOLS)/npm/node_modules/.bin/asl-validator $(addprefix --json-path ,$(wildcard statemachine/*.asl.json))
	$(TOOLS)/bin/hadolint functions/segment/Dockerfile
	$(TOOLS)/checkov/bin/checkov -f template.yaml --config-file .checkov.yaml

typecheck: dev
	$(VENV)/bin/mypy functions/shared/segjob_core functions/api/job_api functions/segment/segmentation functions/notify/job_notify functions/batch/batch_finalize client/segjob local docs/limits.py bench training

bench: dev
	$(PY) bench/segment_bench.py
	$(PY) bench/job_bench.py

cost: setup
	$(PY) bench/cost.py

# Trains from the committed weights (EPOCHS=20, or HOURS=1), then keeps whichever of the new and
# the committed weights scores better on the held-out evaluation (training/train.py says which).
train: dev
	$(PY) training/train.py $(if $(HOURS),--hours $(HOURS),--epochs $${EPOCHS:-20})

eval: dev
	$(PY) training/evaluate.py

# Re-export the committed .pt to the .onnx the function runs (sha256 into the model card).
model: dev
	$(PY) training/export.py

openapi: dev
	PYTHONPATH=functions/api:functions/shared $(PY) -m job_api.openapi > docs/openapi.json

# README "Defaults and limits" is generated from the models, template.yaml and the state machines.
docs: setup
	$(PY) -m docs.limits --write README.md

# sam build makes the zip functions with a local python3.12 (their runtime: PATH or pyenv) and
# the segment image with Docker; sam deploy needs AWS credentials. All three are checked first.
deploy-check: tools
	@missing=""; \
	$(TOOLS)/bin/python -c 'import boto3, sys; sys.exit(boto3.Session().get_credentials() is None)' 2>/dev/null \
	  || missing="$$missing\n  - AWS credentials (aws configure / AWS_PROFILE / AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY)"; \
	$(DOCKER) info >/dev/null 2>&1 \
	  || missing="$$missing\n  - a running Docker engine (sam build builds the segment function's container image)"; \
	test -n "$(PYTHON312)" \
	  || missing="$$missing\n  - python3.12 (sam build builds the zip functions with it): install it, or PYTHON312=/path/to/python3.12"; \
	if [ -n "$$missing" ]; then printf "make deploy needs:$$missing\n" >&2; exit 2; fi

deploy: deploy-check
	PATH="$(dir $(PYTHON312)):$$PATH" $(DEPLOY_ENV) $(SAM) build --parallel
	$(DEPLOY_ENV) $(SAM) deploy $(DEPLOY_FLAGS)

delete: tools
	$(DEPLOY_ENV) $(SAM) delete

clean:
	rm -rf out build .aws-sam .local-state .pytest_cache .ruff_cache .mypy_cache
