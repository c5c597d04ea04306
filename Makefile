# bellmax: two commands do all the setup on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Our own compile cache: repeated runs skip most XLA compilation.
export BELLMAX_CACHE_DIR ?= $(CURDIR)/.cache/bellmax
export PYTHONUNBUFFERED := 1

.PHONY: install demo test test-fast bench lint format clean

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
