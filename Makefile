# bellmax: two commands do all the setup on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Our own compile cache: repeated runs skip most XLA compilation.
export BELLMAX_CACHE_DIR ?= $(CURDIR)/.cache/bellmax
export PYTHONUNBUFFERED := 1

.PHONY: install lock check-deps demo test test-fast test-portable bench lint format clean

install: $(STAMP)

# The exact versions of requirements.lock (pip constraints), within pyproject.toml's ranges.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[dev]"
	touch $(STAMP)

# Rewrite requirements.lock from what pyproject.toml's ranges resolve to today (a fresh venv).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	# ml_dtypes 0.7.0 takes ~0.5 s to import (numpy 2.4 ufunc registration), half of
	# `import jax`, paid by every process start; 0.6.0 imports in 8 ms (jax needs >= 0.5).
	.lock-venv/bin/python -m pip install -q -e ".[dev]" "ml_dtypes<0.7"
	{ head -2 requirements.lock; .lock-venv/bin/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

# bellmax installs beside the current gymnax (and its gymnasium) without a conflict: pip
# resolves both in a fresh venv (--dry-run: nothing is installed).
check-deps:
	rm -rf .deps-venv && $(PYTHON) -m venv .deps-venv
	.deps-venv/bin/python -m pip install -q --dry-run . gymnax
	rm -rf .deps-venv

demo: install
	$(BIN)/bellmax tour --out runs/tour

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --durations=15

# The learning tests (marker `learning`, tests/conftest.py) under two older CPU instruction sets:
# XLA compiles differently per ISA, so a learned result must hold on each, not on this CPU only.
# YNNPACK ignores the cap, so bellmax leaves it off under one (bellmax.core.xla.isa_capped).
PORTABLE_ISAS := AVX2 SSE4_2
test-portable: install
	@for isa in $(PORTABLE_ISAS); do \
	  echo "== learning tests with XLA_FLAGS=--xla_cpu_max_isa=$$isa"; \
	  XLA_FLAGS="--xla_cpu_max_isa=$$isa" $(BIN)/python -m pytest -q -n 2 --dist loadscope \
	    -m learning -p no:cacheprovider || exit 1; \
	done

test-fast: install
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

bench: install
	$(BIN)/python bench/run_all.py --require-quiet $(ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

clean:
	rm -rf $(VENV) .cache runs .pytest_cache .ruff_cache .lock-venv .deps-venv
