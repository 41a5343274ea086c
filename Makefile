# allornone: `make demo` runs the audit on the embedded SmolLM2, `make test` runs the tests.
# Both set up everything first (scripts/install.sh: venv with torch==2.13.0 pinned first,
# the package, the embedded model, Debian data, chromium); re-running is cheap.
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= report

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml scripts/install.sh
	bash scripts/install.sh

install: $(VENV)/.installed

demo: install
	$(PY) -m allornone audit --out $(OUT) --force

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/bench_core.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
