"""ServicePulse nightly pipeline (Airflow 3).

load each source for yesterday (local time) -> raw data checks -> dbt build ->
mart checks. Passing mart checks update the Asset the report DAGs are scheduled on
(servicepulse_weekly_report), so reports go out only after their data passed.
All logic lives in servicepulse.pipeline; this file only wires it.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

# Must match reporting_timezone in the ServicePulse config; `servicepulse run`
# sets it from there. Period boundaries are midnight in this zone.
REPORTING_TIMEZONE = os.environ.get("SERVICEPULSE_REPORTING_TIMEZONE", "Asia/Shanghai")
# The first local day the DAG runs for: settings schedule.start_date, which
# `servicepulse run` passes (and checks) through the environment.
START_DATE = pendulum.parse(os.environ.get("SERVICEPULSE_START_DATE", "2000-01-01"),
                            tz=REPORTING_TIMEZONE)
SOURCES = ("crm_customers", "crm_tickets", "complaints", "survey_responses", "audits")
RAW_ASSETS = {source: Asset(f"servicepulse://raw/{source}") for source in SOURCES}
KPI_MARTS = Asset("servicepulse://marts/kpi_weekly")
CHECKED_MARTS = Asset("servicepulse://quality/kpi_marts_checked")
# DuckDB allows one writer at a time; every warehouse task takes this one-slot pool.
WAREHOUSE_POOL = "servicepulse_warehouse"


@dag(
    dag_id="servicepulse_nightly",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=REPORTING_TIMEZONE),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["servicepulse", "nightly"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "pool": WAREHOUSE_POOL,
    },
    doc_md=__doc__,
)
def servicepulse_nightly():
    # Each task imports the pipeline when it runs, so parsing this file stays cheap.
    @task
    def load_source(source: str, data_interval_start=None, data_interval_end=None):
        from servicepulse import pipeline
        from servicepulse.airflow_support import run_step

        return run_step(pipeline.load, source, data_interval_start, data_interval_end)

    @task(outlets=[KPI_MARTS])
    def dbt_build():
        from servicepulse import pipeline
        from servicepulse.airflow_support import run_step

        return run_step(pipeline.transform)

    # A failed check is not retried away: it fails the run and alerts the data team.
    @task(retries=0)
    def check_raw_data(run_id=None, data_interval_start=None, data_interval_end=None):
        from servicepulse import pipeline
        from servicepulse.airflow_support import run_step

        return run_step(pipeline.check_quality, run_id, data_interval_start,
                        data_interval_end, "raw")

    @task(outlets=[CHECKED_MARTS], retries=0)
    def check_marts(run_id=None, data_interval_start=None, data_interval_end=None):
        from servicepulse import pipeline
        from servicepulse.airflow_support import run_step

        return run_step(pipeline.check_quality, run_id, data_interval_start,
                        data_interval_end, "marts")

    loads = [load_source.override(task_id=f"load_{source}", outlets=[RAW_ASSETS[source]])(source)
             for source in SOURCES]
    raw_checked = check_raw_data()
    built = dbt_build()
    loads >> raw_checked >> built >> check_marts()


servicepulse_nightly()
