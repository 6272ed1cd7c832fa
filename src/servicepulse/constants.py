"""Names more than one part of ServicePulse must agree on: the sources, the DAG ids,
the Asset URIs, the warehouse pool and the default reporting time zone.

Imports nothing, so the DAG files (through dag_common), the CLI and the settings can all
read it without cost.
"""

from __future__ import annotations

# The organisation's time zone unless the settings say otherwise (reporting_timezone).
DEFAULT_REPORTING_TIMEZONE = "Asia/Shanghai"
# Every source the nightly loads, in load order.
SOURCES = ("crm_customers", "crm_tickets", "complaints", "survey_responses", "audits")

NIGHTLY_DAG_ID = "servicepulse_nightly"
REPORT_DAG_IDS = {"weekly": "servicepulse_weekly_report",
                  "monthly": "servicepulse_monthly_report"}

RAW_ASSET_URIS = {source: f"servicepulse://raw/{source}" for source in SOURCES}
KPI_MARTS_URI = "servicepulse://marts/kpi_weekly"
# Updated when the nightly's mart checks pass; the report DAGs are scheduled on it.
CHECKED_MARTS_URI = "servicepulse://quality/kpi_marts_checked"

# Every warehouse task takes a slot of this pool, as many at once as the warehouse
# allows: DuckDB has one writer per file; PostgreSQL takes the five loads four at a
# time (dbt builds never overlap either way: the nightly runs one interval at a time).
# `servicepulse run` creates the pool for its warehouse; docker-compose.yml's airflow-init
# for PostgreSQL (tests/test_deployment.py holds it to this number).
WAREHOUSE_POOL = "servicepulse_warehouse"
WAREHOUSE_POOL_SLOTS = {"duckdb": 1, "postgres": 4}
# A report's render-and-send tasks (one per audience) stay out of that pool: they hold
# the warehouse only for moments (their mart rows, their ledger claims) and wait for it
# by themselves, and a one-slot pool would line up hundreds of renders on one worker.
# Airflow's own pool: as many at once as the workers have slots.
AUDIENCE_POOL = "default_pool"
