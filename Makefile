# policyengine: set-up, main job, checks.
#
#   make run    set everything up, then check, evaluate and test the example policies
#   make test   the whole suite: ruff, ruff format --check, mypy, pytest, policy tests
#
# Every target installs what it needs first; re-running is fast (a stamp file
# records the install and is renewed whenever pyproject.toml changes).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
PE     := $(BIN)/policyengine

INSTALL_STAMP := $(VENV)/.install-stamp
BENCH_STAMP   := $(VENV)/.bench-stamp

RETAIL     := policies/retail
SERVE_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: help venv install run serve test lint format-check typecheck test-py test-policies \
        fmt bench clean clean-native distclean

help:
	@echo "make run        set up .venv and run the main job (check, eval, test the example policies)"
	@echo "make test       the whole suite: lint, format check, mypy, pytest, policy tests"
	@echo "make install    create .venv and install the package with its test extra"
	@echo "make lint       ruff check and ruff format --check"
	@echo "make typecheck  mypy (strict, configured in pyproject.toml)"
	@echo "make fmt        format the code with ruff"
	@echo "make serve      run the sidecar on the retail example (SERVE_ARGS='--port 8181')"
	@echo "make bench      install the peers (casbin, cedarpy, regorus) and run the benchmarks"
	@echo "make clean      remove build outputs and caches; distclean also removes .venv"

# --- set-up ---------------------------------------------------------------

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "policyengine needs Python >= 3.11; $(PYTHON) is " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

venv: $(BIN)/python

# The modules pyproject.toml has mypyc compile: the install compiles them in place, and
# a compiled module shadows its source, so editing one means installing again.
COMPILED := $(shell sed -n '/hooks\.mypyc\]/,/^\]/p' pyproject.toml | grep -o 'policyengine/[a-z_/]*\.py')

$(INSTALL_STAMP): pyproject.toml $(COMPILED) | $(BIN)/python
	$(MAKE) --no-print-directory clean-native  # also what a shorter list left behind
	$(PIP) install --quiet -e '.[test]'
	@touch $@

install: $(INSTALL_STAMP)

# --- the main job ---------------------------------------------------------

run: install
	$(PE) check $(RETAIL)
	$(PE) eval $(RETAIL) GET /api/public/health --format text
	$(PE) test policies

serve: install
	$(PE) serve $(RETAIL) $(SERVE_ARGS)

# --- checks ---------------------------------------------------------------
# `make -k test` runs every step even when an earlier one fails.

test: lint typecheck test-py test-policies

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format-check: install
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# pytest exits 5 when it collects no test: that is a failure here too.
test-py: install
	@status=0; $(BIN)/python -m pytest -p no:cacheprovider || status=$$?; \
	if [ $$status -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

test-policies: install
	$(PE) test policies

fmt: install
	$(BIN)/ruff format .

# --- benchmarks -----------------------------------------------------------
# gordon-to-regorus (Rego) may have no wheel for this machine: the benchmark
# runs without it.

$(BENCH_STAMP): $(INSTALL_STAMP)
	$(PIP) install --quiet -e '.[test,bench]'
	$(PIP) install --quiet gordon-to-regorus || echo "note: gordon-to-regorus did not install; benchmarking without Rego"
	@touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python bench/decide.py

# --- cleaning -------------------------------------------------------------

clean: clean-native
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -print0 \
		| xargs -0 rm -rf
	rm -f $(INSTALL_STAMP) $(BENCH_STAMP)

# the compiled modules (they shadow their sources until the next install)
clean-native:
	find policyengine -name '*.so' -delete
	rm -f policyengine__mypyc.*.so

distclean: clean
	rm -rf $(VENV)
