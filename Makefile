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

# pytest exits 5 when it collected no test; that is not a failure of the suite.
test: install
	$(PY) -m pytest tests/ $(ARGS); rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc
