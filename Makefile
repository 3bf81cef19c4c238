# The README's two commands: `make run` and `make test`. Both set up the virtual environment
# themselves: CPU torch first (the wheel pinned below), then every dependency at the version
# pinned in requirements/dev.lock, then wikirag itself (editable, no dependency resolution).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
SAMPLES := data/samples
RUN_DIR ?= var/samples
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000
LOCK := requirements/dev.lock

.PHONY: install lock run test lint typecheck audit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH_SPEC)
	$(BIN)/pip install --quiet --disable-pip-version-check -r $(LOCK)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/pip check
	touch $@

install: $(VENV)/.installed

# Re-resolve the lock after a change to the dependencies in pyproject.toml (pip-tools, from
# the package index, against the CPU torch of requirements/torch.txt); commit the result.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check 'pip-tools>=7.4'
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-find-links \
	    --no-emit-index-url -c requirements/torch.txt -o $(LOCK) pyproject.toml

run: install
	$(BIN)/wikirag build --index $(RUN_DIR)/index --wiki enwiki \
	    $(SAMPLES)/enwiki-sample-pages-articles.xml.bz2 $(SAMPLES)/enwiki-table-markup.xml.bz2 \
	    $(SAMPLES)/wme/*.tar.gz $(SAMPLES)/wme/enwiki-realtime-sample.ndjson.gz
	$(BIN)/wikirag search --index $(RUN_DIR)/index -k 3 \
	    "When did Einstein receive the Nobel Prize in Physics?"
	$(BIN)/wikirag search --index $(RUN_DIR)/index -k 3 "Où est née Joséphine Baker ?"
	@echo "serving on http://$(HOST):$(PORT) (open access, local use only; Ctrl-C stops)"
	$(BIN)/wikirag serve --index $(RUN_DIR)/index --host $(HOST) --port $(PORT) --open-access

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

# ruff, then the architecture: the import contracts in pyproject.toml (import-linter).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

# Known vulnerabilities in the installed dependencies (pip-audit; see .ci/audit and
# SECURITY.md). An unreachable vulnerability service is reported, not failed (AUDIT_STRICT=1).
audit: install
	VENV=$(VENV) .ci/audit

# Benchmarks write benchmarks/results/*.json and sections of benchmarks/RESULTS.md (minutes).
bench: install
	$(BIN)/python -m benchmarks.ingest_bench
	$(BIN)/python -m benchmarks.build_bench
	$(BIN)/python -m benchmarks.query_bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
