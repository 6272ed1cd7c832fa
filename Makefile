# ServicePulse: `make demo` runs the whole pipeline on the embedded default,
# `make test` runs the test suite. Both set up everything they need first.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
SYNCED := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup system-deps dbt-packages demo test test-fast bench docs lint clean

setup: $(SYNCED) system-deps dbt-packages

# dbt's packages are vendored (dbt_project/vendor/): `dbt deps` links them, offline,
# when packages.yml lists one not yet linked (the same step servicepulse takes itself).
dbt-packages: $(SYNCED)
	@$(VENV)/bin/python -c "from servicepulse.transform import install_dbt_packages; install_dbt_packages()"

# uv itself comes from PyPI into a private virtualenv, pinned, so nothing global changes.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The project's virtualenv, exactly as locked in uv.lock (fails if the lock is stale).
$(SYNCED): $(UV) pyproject.toml uv.lock
	$(UV) sync --locked
	rm -f $(VENV)/.synced-*
	touch $@

# Operating-system packages: a CJK font (Chinese reports), HarfBuzz's subsetter
# (fast font embedding), poppler-utils (tests read and rasterise the PDFs) and
# docker-compose (tests validate docker-compose.yml with it) and chromium (the browser
# tests of the corrective-actions app drive it through Playwright).
system-deps:
	@missing=""; \
	fc-list :lang=zh family 2>/dev/null | grep -qiE "WenQuanYi|Noto Sans CJK|Source Han" || missing="$$missing fonts-wqy-zenhei"; \
	ldconfig -p 2>/dev/null | grep -q libharfbuzz-subset || missing="$$missing libharfbuzz-subset0"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then echo "system packages: ok"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing:$$missing"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
	  echo "WARNING: missing system packages:$$missing"; \
	  echo "  Debian/Ubuntu: sudo apt-get install$$missing"; \
	  echo "  Without a CJK font the zh-CN report refuses to render (it would print boxes)."; \
	fi

demo: setup
	$(VENV)/bin/servicepulse demo --config config/demo.yaml

# Tests run on every core (pytest-xdist); a module whose tests share a built fixture
# stays on one worker (tests/conftest.py). PYTEST_WORKERS=0 runs them in one process.
PYTEST_WORKERS ?= auto
PYTEST := $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup

# The 25 slowest tests are listed at the end, and every test's time is kept in
# output/test-results/junit.xml (what to make faster next, docs/testing.md).
test: setup
	$(PYTEST) --durations=25 --junitxml=output/test-results/junit.xml

# The inner loop: no Airflow runs, no PostgreSQL and no dbt builds (CI runs them all:
# make test). A test that still reaches dbt fails and names the list to add it to
# (DBT_BUILDING_MODULES in tests/conftest.py).
test-fast: setup
	SERVICEPULSE_TEST_FAST=1 $(PYTEST) -m "not airflow and not postgres and not dbt_build"

# Pages written from the code's one source of truth (docs/kpis.md from the KPI seed).
docs: setup
	$(VENV)/bin/python -m servicepulse.kpi_docs

lint: setup
	$(VENV)/bin/ruff check src dags expectations tests

clean:
	rm -rf output data/demo .airflow

# Benchmarks (not part of `make test`): figures are printed and written to output/bench/.
# One area: make bench ARGS="--only marts" (the options: python -m servicepulse.demo.benchmarks -h).
bench: setup
	$(VENV)/bin/python -m servicepulse.demo.benchmarks $(ARGS)
