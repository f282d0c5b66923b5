# Maeul: `make run` serves a demo on http://localhost:8080; `make test` runs the whole suite.
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -n 2 -q

.PHONY: run test install install-test system-deps lint bench clean

$(VENV)/.installed: pyproject.toml constraints.txt setup.py rtc/_sendmmsg.c rtc/_rtp_writer.c rtc/_seq_rewriter.c
	bash scripts/ensure-venv.sh
	$(VENV)/bin/pip install -q -c constraints.txt -e .
	$(PY) scripts/check-runtime-imports.py
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

# The whole suite runs the link-lab tests (real-time media on shaped links: fps, freezes, audio
# gaps) after the rest, one at a time, so the browser tests' CPU load does not count against a link.
# `make test PYTEST_ARGS="..."` runs just what it names.
test: system-deps install-test
ifeq ($(origin PYTEST_ARGS),file)
	bash scripts/run-tests.sh $(PYTEST_ARGS) -m "not lab"
	bash scripts/run-tests.sh -q -m lab
else
	bash scripts/run-tests.sh $(PYTEST_ARGS)
endif

lint: install-test
	$(VENV)/bin/ruff check server kiosk rtc tests run.py
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
