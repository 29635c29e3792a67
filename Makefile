# The two commands a user needs: `make demo` (whole chain on the embedded demo data) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_DIR ?= runs/demo

# The Kaggle-like environments: Kaggle's Python with the image's versions of every package the project
# touches, then the README's Kaggle install on top. Today's image (Python 3.12, kaggle/image-versions.txt)
# and the next one, on Colab's Python 3.13 base (kaggle/image-next-versions.txt).
# $(call find_python,X.Y): pyenv's Python X.Y, else the first pythonX.Y on PATH (empty when neither).
find_python = $(firstword $(shell PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep -m1 '^$(subst .,\.,$(1))') pyenv which python$(1) 2>/dev/null) $(shell command -v python$(1)))
KPYTHON ?= $(call find_python,3.12)
KVENV  := .venv-kaggle
KSTAMP := $(KVENV)/.installed
NPYTHON ?= $(call find_python,3.13)
NVENV  := .venv-kaggle-next
NSTAMP := $(NVENV)/.installed

.PHONY: demo test test-kaggle test-kaggle-next test-wheel kaggle-env kaggle-next-env lint bench mutate clean test-browser

$(STAMP): requirements.txt requirements-kaggle.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(RUN_DIR)  # a fresh run every time (about 75 s on 2 CPU cores)
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

# $(call kaggle_env,VENV,PYTHON,X.Y,VERSIONS): a venv of Python X.Y holding the image's VERSIONS, then the
# README's Kaggle install on top, which must change none of them (compare_freezes.py) and leave `pip check` clean.
define kaggle_env
rm -rf $(1)
@test -n "$(2)" || { echo "no Python $(3) found (pyenv or PATH): name it, KPYTHON=... (3.12) or NPYTHON=... (3.13)"; exit 1; }
$(2) -m venv $(1)
$(1)/bin/python -c "import sys; v = '%d.%d' % sys.version_info[:2]; assert v == '$(3)', '$(2) is Python ' + v + ', not $(3)'"
@echo "1. the image: every package the project touches, at the Kaggle image's version ($(4))"
$(1)/bin/pip install -q --disable-pip-version-check -c $(4) $$(grep -oE '^[A-Za-z0-9_.-]+' $(4))
$(1)/bin/pip freeze > $(1)/freeze-image.txt
@echo "2. the README's Kaggle install step, exactly as a user runs it"
$(1)/bin/pip install -q --disable-pip-version-check -r requirements-kaggle.txt
$(1)/bin/pip freeze > $(1)/freeze-after.txt
$(1)/bin/python kaggle/compare_freezes.py $(1)/freeze-image.txt $(1)/freeze-after.txt
$(1)/bin/pip check
$(1)/bin/python -m ipykernel install --sys-prefix --name python3 > /dev/null
touch $(1)/.installed
endef

# $(call kaggle_suite,VENV): `pip install .` accepts that Python and the image's versions as they are (a dry run
# that would install the package alone: requires-python and the bounds in pyproject.toml), then the whole suite.
define kaggle_suite
$(1)/bin/pip install -q --disable-pip-version-check --dry-run --no-build-isolation --report $(1)/install-package.json .
$(1)/bin/python -c "import json, sys; names = sorted(i['metadata']['name'] for i in json.load(open('$(1)/install-package.json'))['install']); sys.exit(None if names == ['xlsr-helpers'] else 'pip install . would install %s' % names)"
cd $(1) && bin/python -c "import sys, torch, transformers, pandas, numpy; print('kaggle-like env:', sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'pandas', pandas.__version__, 'numpy', numpy.__version__)"
$(1)/bin/python -m pytest -q -p no:cacheprovider
endef

# CI runs these after `make test`: the install must leave the image untouched and the suite must pass there.
test-kaggle: $(KSTAMP)
	$(call kaggle_suite,$(KVENV))

test-kaggle-next: $(NSTAMP)
	$(call kaggle_suite,$(NVENV))

kaggle-env: $(KSTAMP)

kaggle-next-env: $(NSTAMP)

$(KSTAMP): kaggle/image-versions.txt requirements-kaggle.txt kaggle/compare_freezes.py
	$(call kaggle_env,$(KVENV),$(KPYTHON),3.12,kaggle/image-versions.txt)

$(NSTAMP): kaggle/image-next-versions.txt requirements-kaggle.txt kaggle/compare_freezes.py
	$(call kaggle_env,$(NVENV),$(NPYTHON),3.13,kaggle/image-next-versions.txt)

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
	rm -rf runs .pytest_cache $(KVENV) $(NVENV) $(WVENV) build mutants
