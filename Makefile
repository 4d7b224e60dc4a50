# pixtag: `make run` runs the retraining job on the embedded default stack, `make test` the tests.
# Both set everything up first (idempotent): venv in .venv, pinned install, NLTK data, Debian
# chromium + chromedriver + WordNet + docker-compose.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pixtag-installed
NLTK_STAMP := $(VENV)/nltk_data/.pixtag-nltk
SYSTEM_STAMP := $(VENV)/.pixtag-system

.PHONY: setup run run-distributed stop test lint bench clean

setup: $(STAMP) $(SYSTEM_STAMP) $(NLTK_STAMP)

$(STAMP): requirements.txt requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt -c requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(SYSTEM_STAMP): scripts/setup_system.sh | $(STAMP)
	bash scripts/setup_system.sh
	touch $@

$(NLTK_STAMP): scripts/setup_nltk.sh pixtag/tags/nlp.py pixtag/tags/stopwords-english | $(STAMP) $(SYSTEM_STAMP)
	bash scripts/setup_nltk.sh $(VENV)/nltk_data
	touch $@

run: setup
	$(BIN)/pixtag local run

# The same job on the engines of docker-compose.yaml, as local processes (docs/deployment.md).
run-distributed: setup
	$(BIN)/pixtag local run --distributed

stop:
	-$(BIN)/pixtag local stop

# The import contracts (pyproject.toml [tool.importlinter], docs/architecture.md) first: a
# layering break fails in seconds, before the suite.
test: setup
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python bench/scrape.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/gpu.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/bot.py

clean:
	rm -rf var test-artifacts .pytest_cache .ruff_cache
