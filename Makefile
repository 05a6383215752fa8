PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

# The service and dashboard on a SQLite file in .data/, demo accounts replaying March 2020 BTC.
run: $(STAMP)
	$(BIN)/crossmargin serve --demo --db sqlite:///.data/crossmargin.db

test: $(STAMP) chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q -n 2

# The dashboard's browser tests drive Debian's chromium; it is installed, never downloaded.
chromium:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -qq chromium >/dev/null 2>&1 || \
		  { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; } || \
		echo "chromium not installed: the browser tests will skip"; }

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
