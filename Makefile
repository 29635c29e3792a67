# The two commands a user needs: `make demo` (whole chain on the embedded demo data) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_DIR ?= runs/demo

# The Kaggle-like environment: Kaggle's Python (3.12) with the image's versions of every package the
# project touches (kaggle/image-versions.txt), then the README's Kaggle install on top.
KPYTHON ?= $(firstword $(shell PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep -m1 '^3\.12') pyenv which python3.12 2>/dev/null) $(shell command -v python3.12) $(PYTHON))
KVENV  := .venv-kaggle
KBIN   := $(KVENV)/bin
KSTAMP := $(KVENV)/.installed

.PHONY: demo test test-kaggle test-wheel kaggle-env lint bench mutate clean test-browser

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
	$(BIN)/ruff check xlsr_helpers tests benchmarks kaggle notebooks
	$(BIN)/lint-imports --no-cache --no-logo  # the layers and no-cycle contracts in pyproject.toml
	$(BIN)/python -m pytest -q

# CI runs this too: the wheel installed in a throwaway venv (its dependencies borrowed from .venv through a
# .pth line, so nothing is downloaded), then, outside any checkout, a manifest from a bundled descriptor and
# the whole cpu-smoke chain from the bundled presets and notebooks.
WVENV := .venv-wheel
test-wheel: $(STAMP)
	rm -rf $(WVENV) build/wheel
	$(BIN)/pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation -w build/wheel .
	$(BIN)/python -m venv $(WVENV)
	$(BIN)/python -c "import site; print(site.getsitepackages()[0])" > "$$($(WVENV)/bin/python -c 'import site; print(site.getsitepackages()[0])')/_deps_from_venv.pth"
	$(WVENV)/bin/pip install -q --disable-pip-version-check --no-deps build/wheel/xlsr_helpers-*.whl
	$(WVENV)/bin/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	WHEEL_BIN=$(CURDIR)/$(WVENV)/bin; SMOKE=$$(mktemp -d); cd $$SMOKE && \
	  $$WHEEL_BIN/python -c "import xlsr_helpers, sys; assert 'site-packages' in xlsr_helpers.__file__, xlsr_helpers.__file__; print('installed:', xlsr_helpers.__file__)" && \
	  $$WHEEL_BIN/xlsr demo-data corpus --size tiny && \
	  $$WHEEL_BIN/xlsr manifest --dataset asvspoof2019-la --root corpus/LA --out manifests && \
	  $$WHEEL_BIN/xlsr notebooks copies && test -f copies/04_eval_eer.ipynb && \
	  $$WHEEL_BIN/xlsr run --preset cpu-smoke --run-dir run && test -f run/metrics.json && \
	  echo "wheel: manifest, notebooks and the cpu-smoke chain ran outside the checkout ($$SMOKE)"

# CI runs this after `make test`: the install must leave the image untouched and the suite must pass there.
test-kaggle: $(KSTAMP)
	cd $(KVENV) && ../$(KBIN)/python -c "import sys, torch, transformers, pandas; print('kaggle-like env:', sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'pandas', pandas.__version__)"
	$(KBIN)/python -m pytest -q -p no:cacheprovider

kaggle-env: $(KSTAMP)

$(KSTAMP): kaggle/image-versions.txt requirements-kaggle.txt kaggle/compare_freezes.py
	rm -rf $(KVENV)
	$(KPYTHON) -m venv $(KVENV)
	@echo "1. the image: every package the project touches, at the Kaggle image's version"
	$(KBIN)/pip install -q --disable-pip-version-check -c kaggle/image-versions.txt $$(grep -oE '^[A-Za-z0-9_.-]+' kaggle/image-versions.txt)
	$(KBIN)/pip freeze > $(KVENV)/freeze-image.txt
	@echo "2. the README's Kaggle install step, exactly as a user runs it"
	$(KBIN)/pip install -q --disable-pip-version-check -r requirements-kaggle.txt
	$(KBIN)/pip freeze > $(KVENV)/freeze-after.txt
	$(KBIN)/python kaggle/compare_freezes.py $(KVENV)/freeze-image.txt $(KVENV)/freeze-after.txt
	$(KBIN)/pip check
	$(KBIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(KSTAMP)

# --- test-browser: the demo page (`xlsr app`) in headless Chromium -------------------------------------------------
# tests/serve/test_browser.py with Debian's chromium and chromedriver (`apt-get install chromium chromium-driver`;
# .ci/run installs them). Here a missing browser fails the test instead of skipping it; the screenshot is
# copied to build/xlsr-app.png.
test-browser: $(STAMP)
	XLSR_REQUIRE_BROWSER=1 XLSR_SCREENSHOT_DIR=$(CURDIR)/build $(BIN)/python -m pytest -q -p no:cacheprovider tests/serve/test_browser.py
# --- end test-browser ----------------------------------------------------------------------------------------------

lint: $(STAMP)
	$(BIN)/ruff check xlsr_helpers tests benchmarks kaggle notebooks

# Mutation testing of the modules that decide published numbers (slow: not part of `make test`).
mutate: $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check mutmut==3.8.1
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 || true
	$(BIN)/python benchmarks/mutation_report.py

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_all.py

clean:
	rm -rf runs .pytest_cache $(KVENV) $(WVENV) build mutants
