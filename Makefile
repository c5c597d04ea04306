# bellmax: two commands do all the setup on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Our own compile cache: repeated runs skip most XLA compilation.
export BELLMAX_CACHE_DIR ?= $(CURDIR)/.cache/bellmax
export PYTHONUNBUFFERED := 1

.PHONY: install demo test test-fast test-portable bench lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: install
	$(BIN)/bellmax tour --out runs/tour

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --durations=15

# The learning tests (marker `learning`, tests/conftest.py) under two older CPU instruction sets:
# XLA compiles differently per ISA, so a learned result must hold on each, not on this CPU only.
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
	$(BIN)/python bench/run_all.py $(ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

clean:
	rm -rf $(VENV) .cache runs .pytest_cache .ruff_cache
