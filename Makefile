# fasttext-serverless: set up, build, train, serve, test.
#   make serve   set everything up, then serve the endpoint locally (serverless offline)
#   make test    set everything up, then run the whole test suite
#   make test-fast   the tests that need only Python and the fastText binary (no node, chromium, apt)
#   make lint    ruff
# Your own model:
#   make train DATA=posts.csv MODEL=models/posts.bin [VALID=valid.csv] [TRAIN_ARGS="--min-tag-count 5"]
#   make serve MODEL=models/posts.bin [PORT=3001]; make package MODEL=models/posts.bin
# MODEL defaults to model.bin, the Debian model, which the setup trains only when it is missing
# (`make train` without DATA retrains it on purpose): a model of yours is never overwritten by a build.
.DELETE_ON_ERROR:
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/node_modules/.bin
LOCAL_RUNTIME := python$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PORT ?= 3000
HOST ?= localhost
# serverless offline also listens on a port for Lambda's invoke API: a free one, so that two
# local servers can run at once.
LAMBDA_PORT ?= $(shell $(PYTHON) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MODEL ?= model.bin
DATA ?=
VALID ?=
TRAIN_ARGS ?=
ARCH ?= x86_64
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

FASTTEXT_VERSION := $(shell sed -n 's/^FASTTEXT_VERSION = "\(.*\)"/\1/p' fasttext_process.py)
FASTTEXT_SDIST_SHA256 := eb03f2ef6340c6ac9e4398a30026f05471da99381b307aafe2f56e4cd26baaef
FASTTEXT_SRC := build/fasttext-$(FASTTEXT_VERSION)/src
# Fully static and for generic CPUs, so the binary runs unchanged on Lambda's Amazon Linux.
# No fused multiply-add contraction, so x86_64 and arm64 builds give the same probabilities.
CXXFLAGS_FASTTEXT := -std=c++17 -O3 -ffp-contract=off -pthread -static -s
APT_PACKAGES := g++ g++-aarch64-linux-gnu qemu-user-static file chromium chromium-driver

.PHONY: setup tools serve test test-fast test-long lint bench data train evaluate package apt-deps clean

# Downloads and the two compilers run side by side (2 cores): the setup's minutes are its budget.
setup:
	@$(MAKE) --no-print-directory -j3 apt-deps $(VENV)/.installed node_modules/.installed
	@$(MAKE) --no-print-directory -j2 fasttext fasttext-arm64
	@$(MAKE) --no-print-directory $(MODEL)

# apt-deps is checked every time (dpkg only): the tests need chromium even where fasttext is built.
tools: apt-deps $(VENV)/.installed node_modules/.installed fasttext fasttext-arm64

serve: setup
	@echo "Serving $(MODEL) on http://localhost:$(PORT)/dev/recommendations ; try:"
	@echo "  curl -s -X POST http://localhost:$(PORT)/dev/recommendations -d '{\"text\": \"A tiny C++ library to parse JSON files\"}'"
	@echo "or open http://localhost:$(PORT)/dev/ to try it in a browser"
	$(BIN)/serverless offline start --param="runtime=$(LOCAL_RUNTIME)" --param="model=$(MODEL)" \
	  --host $(HOST) --httpPort $(PORT) --lambdaPort $(LAMBDA_PORT)

test: setup
	MODEL=$(MODEL) $(PY) -m pytest

# The slow tests (tests/conftest.py says which) need node, chromium, Debian packages or model.bin;
# the rest need only the virtual environment and the fastText binary, built here without apt.
test-fast: $(VENV)/.installed fasttext
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-quick} $(PY) -m pytest -m "not slow"

lint: $(VENV)/.installed
	$(PY) -m ruff check .

test-long: setup
	HYPOTHESIS_PROFILE=long $(PY) -m pytest tests/test_robustness.py tests/test_contract.py

bench: setup
	$(PY) bench/run.py

apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

build/fasttext-$(FASTTEXT_VERSION).tar.gz: | $(VENV)/.installed
	mkdir -p build
	$(PY) -m pip download -q --no-deps --no-binary :all: -d build fasttext==$(FASTTEXT_VERSION)
	echo "$(FASTTEXT_SDIST_SHA256)  $@" | sha256sum --check --strict

$(FASTTEXT_SRC)/main.cc: build/fasttext-$(FASTTEXT_VERSION).tar.gz
	tar -xzf $< -C build
	touch $@

# g++ from the system (apt-deps installs it in the setup); tests/test_binary.py checks the result.
fasttext: $(FASTTEXT_SRC)/main.cc
	g++ $(CXXFLAGS_FASTTEXT) -march=x86-64 -mtune=generic -o $@ $(FASTTEXT_SRC)/*.cc

fasttext-arm64: $(FASTTEXT_SRC)/main.cc | apt-deps
	aarch64-linux-gnu-g++ $(CXXFLAGS_FASTTEXT) -march=armv8-a -o $@ $(FASTTEXT_SRC)/*.cc
	file $@ | grep -q 'ARM aarch64.*statically linked'

# Built only when missing (order-only prerequisites): a newer checkout never retrains over a model.
model.bin: | fasttext $(VENV)/.installed
	$(PY) -m training.train --output $@

ifneq ($(MODEL),model.bin)
$(MODEL):
	@echo "MODEL=$(MODEL) does not exist: train it with 'make train DATA=your-data.csv MODEL=$(MODEL)'" >&2; exit 1
endif

train: fasttext $(VENV)/.installed
	$(PY) -m training.train $(if $(DATA),--train $(DATA)) $(if $(VALID),--valid $(VALID)) --output $(MODEL) $(TRAIN_ARGS)

evaluate: tools $(MODEL)
	$(PY) -m training.evaluate --model $(MODEL) --baseline $(if $(DATA),--train $(DATA)) $(if $(VALID),--valid $(VALID))

data: $(VENV)/.installed
	$(PY) -m training.build_dataset --out data/

# The contract as the function serves it (GET /openapi.json): openapi.yaml rendered as JSON.
# tests/test_contract.py fails when the two differ.
openapi.json: openapi.yaml | $(VENV)/.installed
	$(PY) -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1])), indent=2))' $< > $@

package: setup
	$(BIN)/serverless package --param="architecture=$(ARCH)" --param="model=$(MODEL)"

clean:
	rm -rf build .serverless fasttext fasttext-arm64 model.bin model.metrics.json model.report.md model.pr.png
