"""What the DAG files share: the sources, Asset URIs, pool, zone and start date, the
failure callback, and the one factory both report DAGs are made by.

The DAG files import this module at the top, so it stays cheap to parse: the standard
library, airflow.sdk and servicepulse.constants only; the pipeline is imported inside tasks and
callbacks when they run. `servicepulse run` passes the zone, start date and deadline
from the settings through the environment (airflow_runner.airflow_environment).
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from airflow.sdk import Asset, AssetOrTimeSchedule, Param, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from servicepulse.constants import (
    AUDIENCE_POOL,
    CHECKED_MARTS_URI,
    DEFAULT_REPORTING_TIMEZONE,
    KPI_MARTS_URI,
    RAW_ASSET_URIS,
    REPORT_DAG_IDS,
    WAREHOUSE_POOL,
)

# Must match reporting_timezone in the ServicePulse config. Period boundaries are
# midnight in this zone.
REPORTING_TIMEZONE = os.environ.get("SERVICEPULSE_REPORTING_TIMEZONE",
                                    DEFAULT_REPORTING_TIMEZONE)
# The first local day the DAGs run for: settings schedule.start_date.
START_DATE = datetime.combine(
    date.fromisoformat(os.environ.get("SERVICEPULSE_START_DATE", "2000-01-01")), time(0),
    tzinfo=ZoneInfo(REPORTING_TIMEZONE))
RAW_ASSETS = {source: Asset(uri) for source, uri in RAW_ASSET_URIS.items()}
KPI_MARTS = Asset(KPI_MARTS_URI)
CHECKED_MARTS = Asset(CHECKED_MARTS_URI)
# A night not finished this many hours after it was queued (queued at local midnight:
# not checked by 06:00 local by default) alerts the data team. 0: no deadline
# (`servicepulse run`'s in-process runs, which have no triggerer).
NIGHTLY_DEADLINE_HOURS = float(os.environ.get("SERVICEPULSE_NIGHTLY_DEADLINE_HOURS", "6"))


def alert_data_team(context: Any) -> None:
    """Every task's on_failure_callback: after its last retry, one alert per failure
    and interval through delivery.notify."""
    from servicepulse.delivery.notify import task_failure_callback

    task_failure_callback(context)


def report_dag(report: str, deadline_cron: str, period_example: str, doc: str) -> Any:
    """The weekly or monthly report DAG: on the nightly's checked-marts Asset (send the
    last complete period once it has passed) or on ``deadline_cron`` (the deadline:
    send, or tell the recipients it is delayed and fail loudly).

    Publishing fans out: ``plan_<report>_report`` decides the period and lists its
    audiences; ``render_and_send_<report>_report`` is mapped over them, one task per
    audience (its PDF, its recipients' e-mails), so the workers share the renders;
    ``finish_<report>_report`` runs whatever they did (archive, one delivery alert, the
    run's outcome). The steps are servicepulse.pipeline's plan_report, render_and_send
    and finish_report."""
    @dag(
        dag_id=REPORT_DAG_IDS[report],
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(deadline_cron, timezone=REPORTING_TIMEZONE),
            assets=CHECKED_MARTS),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["servicepulse", "report"],
        params={
            "period": Param(None, type=["null", "string"],
                            description=f"period to send, e.g. {period_example} "
                                        "(default: the due one)"),
            "recipient": Param(None, type=["null", "string"],
                               description="only this configured recipient"),
            "resend_reason": Param(None, type=["null", "string"],
                                   description="send again on purpose, recorded in the "
                                               "ledger"),
        },
        default_args={
            "on_failure_callback": alert_data_team,
            "retries": 3,
            "retry_delay": timedelta(minutes=5),
            "retry_exponential_backoff": True,
            "pool": WAREHOUSE_POOL,
        },
        doc_md=doc,
    )
    def report_dag_body() -> None:
        @task(task_id=f"plan_{report}_report")
        def plan(params=None, run_id=None, logical_date=None,
                 triggering_asset_events=None):
            from servicepulse import pipeline
            from servicepulse.airflow_support import run_step

            params = params or {}
            planned = run_step(pipeline.plan_report, report, params.get("period"),
                               run_id=run_id, logical_date=logical_date,
                               triggered_by_data=bool(triggering_asset_events),
                               recipient=params.get("recipient"),
                               resend_reason=params.get("resend_reason"))
            return planned["items"]  # what the audiences' tasks are mapped over

        @task(task_id=f"render_and_send_{report}_report", pool=AUDIENCE_POOL,
              map_index_template="{{ audience }}")
        def render_and_send(item, run_id=None):
            from airflow.sdk import get_current_context

            from servicepulse import pipeline
            from servicepulse.airflow_support import run_step

            # The mapped task's name in the UI, e.g. "bj_call_centre zh-CN".
            get_current_context()["audience"] = (f"{item['department'] or 'organisation'} "
                                                 f"{item['locale']}")
            return run_step(pipeline.render_and_send, item, run_id=run_id)

        # All done, not all succeeded: an audience that failed for good still gets the
        # archive, the one delivery alert and the run's failure; zero audiences finish
        # at once.
        @task(task_id=f"finish_{report}_report", trigger_rule="all_done")
        def finish(items, results, run_id=None):
            from servicepulse import pipeline
            from servicepulse.airflow_support import run_step

            return run_step(pipeline.finish_report, items, list(results or ()),
                            run_id=run_id)

        items = plan()
        finish(items, render_and_send.expand(item=items))

        # The nightly's heartbeat, on every scheduled run: a scheduler that stopped
        # running it, or a nightly that no longer parses, leaves no failed task behind.
        @task(task_id="check_nightly_heartbeat")
        def heartbeat(logical_date=None, triggering_asset_events=None):
            if triggering_asset_events:
                return {"skipped": "run by the nightly's checked data: it is alive"}
            from servicepulse import pipeline
            from servicepulse.airflow_support import run_step

            return run_step(pipeline.nightly_heartbeat, logical_date)

        heartbeat()

    return report_dag_body()
