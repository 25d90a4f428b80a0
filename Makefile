# The two commands the README opens with. Both install what is missing first.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install install-demo demo test test-fast lint results

# The t5 library is the differential test's reference. Its own requirements
# (seqio-nightly, tfds-nightly, mesh-tensorflow) would replace the pinned seqio and
# TFDS, so it goes in without them; the `t5` extra holds what its data modules import.
T5_REFERENCE := t5==0.9.4

install:
	$(PIP) install -q -e ".[test,t5]"
	$(PIP) install -q --no-deps "$(T5_REFERENCE)"

# The demo needs the package alone: no torch, transformers or peft (those are the tests').
# Silent (no echo, pip's errors only), so the demo's console holds the demo's lines.
install-demo:
	@$(PIP) install -qq --disable-pip-version-check -e .

demo: install-demo
	@$(PYTHON) -m prompt_tuning.demo

# The paper's findings on the shipped model -> docs/results.md (about 3 hours on 2 cores;
# resumable; one section: `python scripts/results.py --section NAME`).
results: install
	$(PYTHON) scripts/results.py

test: install
	$(PYTHON) -m pytest -q -p no:cacheprovider --durations=25

test-fast: install
	$(PYTHON) -m pytest -q -m "not slow"

lint: install
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check .
