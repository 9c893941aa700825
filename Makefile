# Two commands do all the set-up on a fresh machine:
#   make bench   the benchmark suite on this machine's device (results saved under .benchmarks/)
#   make test    the plugin's own tests
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: bench test lint install

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

bench: install
	$(PY) -m pytest benchmarks/ --benchmark-autosave $(ARGS)

# ruff and mypy, configured in pyproject.toml; CI runs this before the tests.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Two passes: the tests that can share the cores run in TEST_WORKERS pytest-xdist workers; those marked
# `serial` (bounds on time or throughput that assume an idle machine) run alone after them. pytest exits 5
# when a pass collected no test; that is not a failure of the suite. `pytest tests/` alone runs them all.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest tests/ -n $(TEST_WORKERS) --dist loadfile -m "not serial" $(ARGS); a=$$?; [ $$a -eq 5 ] && a=0; \
	$(PY) -m pytest tests/ -m serial $(ARGS); b=$$?; [ $$b -eq 5 ] && b=0; \
	[ $$a -ne 0 ] && exit $$a; exit $$b
