# The two front-door commands (README): `make demo` (main job) and `make test` (whole suite).
# Each sets up .venv from the project's own pinned files first; set-up is skipped when up to date.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done

.PHONY: setup demo test bench clean

$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/locate-ros demo

test: $(STAMP)
	$(PY) -m pytest -q test

bench: $(STAMP)
	$(PY) bench/decode.py

clean:
	rm -rf $(VENV) .cache
