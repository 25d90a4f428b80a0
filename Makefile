# The two commands the README opens with. Both install what is missing first.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install demo test test-fast lint results

install:
	$(PIP) install -q -e ".[test]"

demo: install
	$(PYTHON) -m prompt_tuning.demo

# The paper's findings on the shipped model -> docs/results.md (about 3 hours on 2 cores;
# resumable; one section: `python scripts/results.py --section NAME`).
results: install
	$(PYTHON) scripts/results.py

test: install
	$(PYTHON) -m pytest -q -p no:cacheprovider

test-fast: install
	$(PYTHON) -m pytest -q -m "not slow"

lint:
	ruff check . && ruff format --check .
