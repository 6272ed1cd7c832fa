"""ServicePulse weekly operations report (Airflow 3).

Runs when its data is ready, not on a blind timer:
- every time the nightly DAG's mart checks pass (the Asset below), it sends the last
  complete ISO week if that week is now checked and not yet delivered;
- at the deadline (Monday 10:00, reporting time zone) it sends the previous week, or,
  if that week's data has not passed the quality gate, tells every recipient the report
  is delayed and alerts the data team (the run fails, loudly).
Each recipient gets each week once (the send ledger), however often this runs.
Backfill / re-send: trigger with params, e.g. {"period": "2026-W45"} or
{"period": "2026-W47", "recipient": "a@example.com", "resend_reason": "lost it"}.
All logic lives in servicepulse.pipeline; this file only wires it.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, Param, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

REPORTING_TIMEZONE = os.environ.get("SERVICEPULSE_REPORTING_TIMEZONE", "Asia/Shanghai")
# The first local day the DAG runs for: settings schedule.start_date, which
# `servicepulse run` passes (and checks) through the environment.
START_DATE = pendulum.parse(os.environ.get("SERVICEPULSE_START_DATE", "2000-01-01"),
                            tz=REPORTING_TIMEZONE)
CHECKED_MARTS = Asset("servicepulse://quality/kpi_marts_checked")
WAREHOUSE_POOL = "servicepulse_warehouse"
# When readers expect the report; the data normally arrives hours before.
WEEKLY_DEADLINE = "0 10 * * 1"


@dag(
    dag_id="servicepulse_weekly_report",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(WEEKLY_DEADLINE, timezone=REPORTING_TIMEZONE),
        assets=CHECKED_MARTS),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["servicepulse", "report"],
    params={
        "period": Param(None, type=["null", "string"],
                        description="ISO week to send, e.g. 2026-W47 (default: the due one)"),
        "recipient": Param(None, type=["null", "string"],
                           description="only this configured recipient"),
        "resend_reason": Param(None, type=["null", "string"],
                               description="send again on purpose, recorded in the ledger"),
    },
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "pool": WAREHOUSE_POOL,
    },
    doc_md=__doc__,
)
def servicepulse_weekly_report():
    @task
    def publish_weekly_report(params=None, run_id=None, logical_date=None,
                              triggering_asset_events=None):
        from servicepulse import pipeline
        from servicepulse.airflow_support import run_step

        return run_step(pipeline.publish_weekly, params.get("period"), run_id=run_id,
                        logical_date=logical_date,
                        triggered_by_data=bool(triggering_asset_events),
                        recipient=params.get("recipient"),
                        resend_reason=params.get("resend_reason"))

    publish_weekly_report()


servicepulse_weekly_report()
