# The two commands a user needs: `make demo` (whole chain on the embedded demo data) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_DIR ?= runs/demo

.PHONY: demo test lint bench clean

$(STAMP): requirements.txt requirements-kaggle.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(RUN_DIR)  # a fresh run every time (about 40 s on 2 CPU cores)
	$(BIN)/xlsr run --preset demo --run-dir $(RUN_DIR)

test: $(STAMP)
	$(BIN)/ruff check xlsr_helpers tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check xlsr_helpers tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_all.py

clean:
	rm -rf runs .pytest_cache
