# The two commands of the README: `make run` (the main job) and `make test` (the test suite).
# Both install into .venv first when pyproject.toml or the install script changed.
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME := $(CURDIR)

.PHONY: setup run test ui bench
$(VENV)/.installed: pyproject.toml scripts/install.sh
	bash scripts/install.sh

setup: $(VENV)/.installed

run: setup
	$(PY) -m em_assets run

test: setup
	$(PY) -m pytest -q

ui: setup
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: setup
	$(PY) bench/bench_filter_chain.py
