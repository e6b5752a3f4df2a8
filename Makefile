# fasttext-serverless: set up, build, train, serve, test.
#   make serve   set everything up, then serve the endpoint locally (serverless offline)
#   make test    set everything up, then run the whole test suite
.DELETE_ON_ERROR:
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/node_modules/.bin
LOCAL_RUNTIME := python$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PORT ?= 3000
ARCH ?= x86_64
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

FASTTEXT_VERSION := $(shell sed -n 's/^FASTTEXT_VERSION = "\(.*\)"/\1/p' fasttext_process.py)
FASTTEXT_SDIST_SHA256 := eb03f2ef6340c6ac9e4398a30026f05471da99381b307aafe2f56e4cd26baaef
FASTTEXT_SRC := build/fasttext-$(FASTTEXT_VERSION)/src
# Fully static and for generic CPUs, so the binary runs unchanged on Lambda's Amazon Linux.
# No fused multiply-add contraction, so x86_64 and arm64 builds give the same probabilities.
CXXFLAGS_FASTTEXT := -std=c++17 -O3 -ffp-contract=off -pthread -static -s
APT_PACKAGES := g++ g++-aarch64-linux-gnu qemu-user-static file chromium chromium-driver

.PHONY: setup serve test test-long bench data train autotune evaluate package apt-deps clean

setup: $(VENV)/.installed node_modules/.installed fasttext fasttext-arm64 model.bin

serve: setup
	@echo "Serving on http://localhost:$(PORT)/dev/recommendations ; try:"
	@echo "  curl -s -X POST http://localhost:$(PORT)/dev/recommendations -d '{\"text\": \"A tiny C++ library to parse JSON files\"}'"
	@echo "or open http://localhost:$(PORT)/dev/ to try it in a browser"
	$(BIN)/serverless offline start --param="runtime=$(LOCAL_RUNTIME)" --httpPort $(PORT)

test: setup
	$(PY) -m pytest

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

build/fasttext-$(FASTTEXT_VERSION).tar.gz:
	mkdir -p build
	$(PYTHON) -m pip download -q --no-deps --no-binary :all: -d build fasttext==$(FASTTEXT_VERSION)
	echo "$(FASTTEXT_SDIST_SHA256)  $@" | sha256sum --check --strict

$(FASTTEXT_SRC)/main.cc: build/fasttext-$(FASTTEXT_VERSION).tar.gz
	tar -xzf $< -C build
	touch $@

fasttext: $(FASTTEXT_SRC)/main.cc | apt-deps
	g++ $(CXXFLAGS_FASTTEXT) -march=x86-64 -mtune=generic -o $@ $(FASTTEXT_SRC)/*.cc
	file $@ | grep -q 'statically linked'

fasttext-arm64: $(FASTTEXT_SRC)/main.cc | apt-deps
	aarch64-linux-gnu-g++ $(CXXFLAGS_FASTTEXT) -march=armv8-a -o $@ $(FASTTEXT_SRC)/*.cc
	file $@ | grep -q 'ARM aarch64.*statically linked'

model.bin: fasttext data/train.tsv.gz data/valid.tsv.gz text_cleaning.py $(wildcard training/*.py) $(VENV)/.installed
	$(PY) -m training.train --preset default --output $@

train: fasttext $(VENV)/.installed
	$(PY) -m training.train --preset default --output model.bin

autotune: fasttext $(VENV)/.installed
	$(PY) -m training.autotune

evaluate: model.bin
	$(PY) -m training.evaluate --model model.bin --baseline

data: $(VENV)/.installed
	$(PY) -m training.build_dataset --out data/

# The contract as the function serves it (GET /openapi.json): openapi.yaml rendered as JSON.
# tests/test_contract.py fails when the two differ.
openapi.json: openapi.yaml | $(VENV)/.installed
	$(PY) -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1])), indent=2))' $< > $@

package: setup
	$(BIN)/serverless package --param="architecture=$(ARCH)"

clean:
	rm -rf build .serverless fasttext fasttext-arm64 model.bin model.metrics.json model.report.md model.pr.png
