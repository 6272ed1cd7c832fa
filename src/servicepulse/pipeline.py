"""The nightly pipeline's steps. The DAG in dags/ wires these and nothing else.

Each step takes its data interval explicitly (Airflow's data_interval_start/end)
and reads settings from $SERVICEPULSE_CONFIG, so a step behaves the same in a
scheduler, in `airflow dags test`, or called from a test.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from servicepulse.settings import Settings, load_settings

log = logging.getLogger(__name__)
SOURCES = ("crm_customers", "crm_tickets", "complaints", "survey_responses", "audits")


class IntervalError(ValueError):
    pass


def local_day_interval(settings: Settings, start: datetime, end: datetime) -> tuple[datetime,
                                                                                    datetime]:
    """Check the interval is whole local days (the pipeline's partitions are days)."""
    local_start, local_end = start.astimezone(settings.tz), end.astimezone(settings.tz)
    for moment in (local_start, local_end):
        if (moment.hour, moment.minute, moment.second, moment.microsecond) != (0, 0, 0, 0):
            raise IntervalError(
                f"data interval {start.isoformat()} – {end.isoformat()} does not start and "
                f"end at midnight in {settings.reporting_timezone}; check the DAG timetable's "
                "time zone matches reporting_timezone")
    if local_end <= local_start:
        raise IntervalError(f"empty data interval {start.isoformat()} – {end.isoformat()}")
    return local_start, local_end


def load(source: str, start: datetime, end: datetime,
         settings: Settings | None = None) -> dict[str, Any]:
    from servicepulse.load import load_source
    from servicepulse.warehouse import connected

    settings = settings or load_settings()
    local_start, local_end = local_day_interval(settings, start, end)
    with connected(settings) as warehouse:
        result = load_source(settings, warehouse, source, local_start, local_end)
    log.info("loaded %s: %d of %d delivered rows into partitions %s – %s%s", source,
             result.rows_loaded, result.rows_in_delivery, *result.partitions,
             " (first load: backfill)" if result.backfill else "")
    return {"source": source, "rows_loaded": result.rows_loaded,
            "rows_in_delivery": result.rows_in_delivery, "partitions": list(result.partitions),
            "backfill": result.backfill}


def transform(settings: Settings | None = None, full_refresh: bool = False) -> dict[str, Any]:
    from servicepulse.transform import build

    settings = settings or load_settings()
    result = build(settings, full_refresh=full_refresh)
    summary = [line for line in result.output.splitlines() if "Done. PASS=" in line]
    log.info("dbt build: %s", summary[-1].strip() if summary else "done")
    return {"dbt": summary[-1].strip() if summary else "done"}


def check_quality(run_id: str, start: datetime, end: datetime, layer: str | None = None,
                  settings: Settings | None = None) -> dict[str, Any]:
    """Run the suites of ``layer`` ("raw" before dbt, "marts" after; None: all) for the
    interval, store the results, alert the data team about failures and warnings,
    and stop the run on a critical failure."""
    from servicepulse.quality.alert import write_alert
    from servicepulse.quality.runner import gate, run_checks, store_results
    from servicepulse.warehouse import connected

    settings = settings or load_settings()
    local_start, local_end = local_day_interval(settings, start, end)
    report = run_checks(settings, run_id, local_start, local_end, layer)
    with connected(settings) as warehouse:
        store_results(settings, warehouse, report)
    log.info("data quality: %s", report.summary())
    if alert := write_alert(settings, report):
        log.warning("data-quality alert for the data team: %s", alert)
    gate(report)
    return report.summary()


def completed_week(end: datetime, settings: Settings | None = None) -> str | None:
    """The ISO week label the interval completes, if it ends on a local Monday 00:00."""
    from servicepulse.kpis import Period

    settings = settings or load_settings()
    local_end = end.astimezone(settings.tz)
    if local_end.isoweekday() != 1 or (local_end.hour, local_end.minute) != (0, 0):
        return None
    return Period.week_of((local_end - timedelta(days=1)).date()).label


def publish_weekly(period_label: str, run_id: str | None = None,
                   settings: Settings | None = None) -> dict[str, Any]:
    from servicepulse.kpis import Period
    from servicepulse.reports.publish import publish_weekly as publish

    settings = settings or load_settings()
    published = publish(settings, Period.parse(period_label), run_id=run_id)
    for path in published.reports.values():
        log.info("report %s", path)
    log.info("weekly %s delivery: %s", period_label, published.delivery.summary())
    return {"reports": [str(p) for p in published.reports.values()],
            "delivery": published.delivery.summary()}
