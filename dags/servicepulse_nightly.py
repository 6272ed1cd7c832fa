"""ServicePulse nightly pipeline (Airflow 3).

load each source for yesterday (local time) -> raw data checks -> dbt build ->
mart checks -> corrective actions (findings open them, the data verifies them) ->
owners' notices. Once the
marts passed their checks and the actions are tracked, the Asset the report DAGs are
scheduled on is updated (servicepulse_weekly_report): reports go out only after their
data passed.
All logic lives in servicepulse.pipeline; this file only wires it.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from servicepulse.constants import NIGHTLY_DAG_ID, SOURCES, WAREHOUSE_POOL
from servicepulse.dag_common import (
    CHECKED_MARTS,
    KPI_MARTS,
    NIGHTLY_DEADLINE_HOURS,
    RAW_ASSETS,
    REPORTING_TIMEZONE,
    START_DATE,
    alert_data_team,
)


@dag(
    dag_id=NIGHTLY_DAG_ID,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=REPORTING_TIMEZONE),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["servicepulse", "nightly"],
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=NIGHTLY_DEADLINE_HOURS),
        # A dotted path: the triggerer imports it when the deadline passes.
        callback=AsyncCallback("servicepulse.delivery.notify.nightly_deadline_missed",
                               kwargs={"hours": NIGHTLY_DEADLINE_HOURS}),
    ) if NIGHTLY_DEADLINE_HOURS > 0 else None,
    default_args={
        # After the last retry: one alert per failure and interval to the data team.
        "on_failure_callback": alert_data_team,
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
    def dbt_build(outlet_events=None):
        from servicepulse import pipeline
        from servicepulse.airflow_support import run_step

        built = run_step(pipeline.transform)
        # Per-model status and timing travel with the Asset event (seen in the UI).
        outlet_events[KPI_MARTS].extra = built
        return built

    # A failed check is not retried away: it fails the run and alerts the data team.
    @task(retries=0)
    def check_raw_data(run_id=None, data_interval_start=None, data_interval_end=None):
        from servicepulse import pipeline
        from servicepulse.airflow_support import run_step

        return run_step(pipeline.check_quality, run_id, data_interval_start,
                        data_interval_end, "raw")

    @task(retries=0)
    def check_marts(run_id=None, data_interval_start=None, data_interval_end=None):
        from servicepulse import pipeline
        from servicepulse.airflow_support import run_step

        return run_step(pipeline.check_quality, run_id, data_interval_start,
                        data_interval_end, "marts")

    # The report DAGs start when this is done: their corrective-actions sections read
    # the night's findings, verifications and reopenings.
    @task(outlets=[CHECKED_MARTS])
    def track_actions(data_interval_start=None, data_interval_end=None):
        from servicepulse import pipeline
        from servicepulse.airflow_support import run_step

        return run_step(pipeline.track_actions, data_interval_start, data_interval_end)

    # After the reports were released: a refused mail to one owner holds back nothing.
    @task
    def send_action_notices(run_id=None, data_interval_start=None, data_interval_end=None):
        from servicepulse import pipeline
        from servicepulse.airflow_support import run_step

        return run_step(pipeline.send_action_notices, data_interval_start,
                        data_interval_end, run_id=run_id)

    loads = [load_source.override(task_id=f"load_{source}", outlets=[RAW_ASSETS[source]])(source)
             for source in SOURCES]
    raw_checked = check_raw_data()
    built = dbt_build()
    loads >> raw_checked >> built >> check_marts() >> track_actions() >> send_action_notices()


servicepulse_nightly()
