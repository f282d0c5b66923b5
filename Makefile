# Maeul: `make run` serves a demo on http://localhost:8080; `make test` runs the whole suite.
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -n 2 -q

.PHONY: run test install install-test system-deps lint bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	bash scripts/ensure-venv.sh
	$(VENV)/bin/pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(PY) run.py serve --demo

system-deps:
	bash scripts/install-system-deps.sh

test: install-test system-deps
	bash scripts/run-tests.sh $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check server kiosk tests run.py
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
