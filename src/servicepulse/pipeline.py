"""The nightly pipeline's steps. The DAG in dags/ wires these and nothing else.

Each step takes its data interval explicitly (Airflow's data_interval_start/end)
and reads settings from $SERVICEPULSE_CONFIG, so a step behaves the same in a
scheduler, in `airflow dags test`, or called from a test.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from servicepulse.errors import PermanentError, UserError
from servicepulse.settings import Settings, load_settings

log = logging.getLogger(__name__)


class IntervalError(UserError, ValueError):
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
    log.info("loaded %s: %d of %d delivered rows into partitions %s – %s%s (manifest %s)",
             source, result.rows_loaded, result.rows_in_delivery, *result.partitions,
             " (first load: backfill)" if result.backfill else "", result.manifest)
    if result.rows_quarantined:
        log.warning("%s: %d rows quarantined (see raw.quarantined_rows, batch %s)", source,
                    result.rows_quarantined, result.batch_id)
    if result.new_columns:
        log.warning("%s: columns the contract does not know, kept in _extras: %s", source,
                    ", ".join(result.new_columns))
    for note in result.skipped:
        log.info("%s: skipped %s", source, note)
    return {"source": source, "batch_id": result.batch_id, "rows_loaded": result.rows_loaded,
            "rows_in_delivery": result.rows_in_delivery,
            "rows_quarantined": result.rows_quarantined,
            "rows_outside_window": sum(f["rows_outside_window"] for f in result.files),
            "outside_sample": [f"{f['origin']}, {row}" for f in result.files
                               for row in f["outside_sample"]],
            "partitions": list(result.partitions),
            "backfill": result.backfill, "files": len(result.files),
            "new_columns": result.new_columns, "skipped": result.skipped}


def transform(settings: Settings | None = None, full_refresh: bool = False) -> dict[str, Any]:
    from servicepulse.transform import build

    settings = settings or load_settings()
    result = build(settings, full_refresh=full_refresh)
    # dbt's totals line without its clock time ("12:00:01  Done. PASS=…").
    done = [line[line.index("Done. PASS="):].strip() for line in result.output.splitlines()
            if "Done. PASS=" in line]
    outcome = done[-1] if done else (result.summary or {}).get("skipped", "done")
    log.info("dbt build: %s", outcome)
    # dbt's totals line (or why nothing was built), and per-node counts, the slowest
    # models and every problem from run_results.json (the task's XCom and the KPI marts
    # Asset event's extra).
    return {"dbt": outcome, "summary": result.summary or {}}


def check_quality(run_id: str, start: datetime, end: datetime, layer: str | None = None,
                  settings: Settings | None = None) -> dict[str, Any]:
    """Run the suites of ``layer`` ("raw" before dbt, "marts" after; None: all) for the
    interval, store the results, alert the data team about failures and warnings,
    and stop the run on a critical failure."""
    from servicepulse.quality.alert import write_alert
    from servicepulse.quality.overview import write_overview
    from servicepulse.quality.runner import gate, run_checks, store_results
    from servicepulse.warehouse import connected

    settings = settings or load_settings()
    local_start, local_end = local_day_interval(settings, start, end)
    report = run_checks(settings, run_id, local_start, local_end, layer)
    with connected(settings) as warehouse:
        store_results(settings, warehouse, report)
        overview = write_overview(settings, warehouse)
    log.info("data-quality overview (works offline): %s", overview)
    log.info("data quality: %s", report.summary())
    if alert := write_alert(settings, report):
        log.warning("data-quality alert for the data team: %s", alert)
    gate(report)
    return report.summary()


def track_actions(start: datetime, end: datetime,
                  settings: Settings | None = None) -> dict[str, Any]:
    """The rectification loop's night, after the marts passed their checks: findings
    open corrective actions, done actions are verified or reopened (docs/actions.md)."""
    from servicepulse.actions.tracking import track
    from servicepulse.warehouse import connected

    settings = settings or load_settings()
    _, local_end = local_day_interval(settings, start, end)
    with connected(settings) as warehouse:
        summary = track(settings, warehouse, local_end.date()).summary()
    log.info("corrective actions as of %s: %d new findings, opened %s, verified %s, "
             "reopened %s", summary["as_of"], summary["new_findings"],
             summary["opened"] or "none", summary["verified"] or "none",
             summary["reopened"] or "none")
    return summary


def send_action_notices(start: datetime, end: datetime, settings: Settings | None = None,
                        run_id: str | None = None) -> dict[str, int]:
    """Owners' rectification notices and due reminders for the night, each once. Its
    own step: a mail server that refuses one owner holds back neither the others nor
    the reports."""
    from servicepulse.actions.notices import send_notices
    from servicepulse.warehouse import connected

    settings = settings or load_settings()
    _, local_end = local_day_interval(settings, start, end)
    with connected(settings) as warehouse:
        counts = send_notices(settings, warehouse, local_end.date(), run_id)
    log.info("rectification notices and reminders: %s", counts or "none due")
    return counts

class ReportNotReady(PermanentError):
    """The period's data has not passed the quality gate: nothing was sent to readers."""


class PlanUnfinished(PermanentError):
    """The report's plan step failed (its own alert says why): nothing to finish."""

    data_team_alerted = True  # the plan task's failure did (see airflow_support.run_step)


def publish_weekly(period_label: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """The weekly report in one process (see publish_report)."""
    return publish_report("weekly", period_label, **kwargs)


def publish_monthly(period_label: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """The monthly report in one process (see publish_report)."""
    return publish_report("monthly", period_label, **kwargs)


def publish_report(report: str, period_label: str | None = None, run_id: str | None = None,
                   logical_date: datetime | None = None, triggered_by_data: bool = False,
                   recipient: str | None = None, resend_reason: str | None = None,
                   settings: Settings | None = None) -> dict[str, Any]:
    """A report's three steps in this process, one audience after another (`servicepulse
    publish` and `resend`): plan_report, render_and_send's work for each audience,
    finish_report. The report DAGs run the same steps as tasks, the audiences mapped
    over the workers. Returns finish_report's summary, or {"period", "skipped"}."""
    from servicepulse.publishing import publish_each

    settings = settings or load_settings()
    planned = plan_report(report, period_label, run_id=run_id, logical_date=logical_date,
                          triggered_by_data=triggered_by_data, recipient=recipient,
                          resend_reason=resend_reason, settings=settings)
    if "skipped" in planned:
        return {"period": planned["period"], "skipped": planned["skipped"]}
    # Sends that need attention are concluded once, by finish_report, as the DAG does;
    # a failure to render stops the run at once.
    results = publish_each(settings, planned["items"], run_id=run_id)
    return finish_report(planned["items"], results, run_id=run_id, settings=settings)


def plan_report(report: str, period_label: str | None = None, run_id: str | None = None,
                logical_date: datetime | None = None, triggered_by_data: bool = False,
                recipient: str | None = None, resend_reason: str | None = None,
                settings: Settings | None = None) -> dict[str, Any]:
    """A report's first step (the report DAG's plan task): decide which period is due,
    check that its data passed the gate, and plan the work: one item per audience
    (publishing.plan_audiences), each rendered and sent by render_and_send.

    - ``period_label`` given (backfill, re-send): that ISO week / month.
    - ``triggered_by_data`` (the nightly run's checked-marts Asset): the last period
      complete in the newest checked-and-passed interval; quietly nothing if it is
      already delivered or not complete yet.
    - otherwise (the deadline on the DAG's timetable): the last period complete before
      ``logical_date``. The weekly deadline is Monday morning; the monthly one is the
      month's first working day (business calendar, dim_dates), so runs on the days
      before it do nothing. Past the deadline and not ready: every recipient gets a
      "report delayed" notice (once) and the data team an alert, and the run fails.

    Returns {"report", "period", "items"}; with "skipped" (the reason, logged) and no
    items when there is nothing to publish.
    """
    from servicepulse.kpis import Period, PeriodError
    from servicepulse.publishing import (
        PERIOD_KINDS,
        check_marts_cover,
        delivered,
        parse_report_period,
        plan_audiences,
        send_delayed_notice,
    )
    from servicepulse.readiness import newest_ready_end, period_readiness
    from servicepulse.warehouse import connected

    settings = settings or load_settings()
    kind = PERIOD_KINDS[report]

    def skipped(period_label: str | None, reason: str) -> dict[str, Any]:
        log.info("%s %s: nothing to publish: %s", report, period_label or "-", reason)
        return {"report": report, "period": period_label, "skipped": reason, "items": []}

    with connected(settings) as warehouse:
        if period_label:
            period = parse_report_period(report, period_label)
        elif triggered_by_data:
            ready_end = newest_ready_end(settings, warehouse)
            if ready_end is None:
                return skipped(None, "no interval has passed the gate yet")
            period = Period.last_complete(kind, ready_end.astimezone(settings.tz).date())
        else:
            if logical_date is None:
                raise IntervalError(f"a scheduled {report} run needs its logical date")
            today = logical_date.astimezone(settings.tz).date()
            period = Period.last_complete(kind, today)
            if kind == "month":
                due = first_working_day(settings, warehouse, today.replace(day=1))
                if today < due:
                    return skipped(period.label, f"not due before {due.isoformat()}, the "
                                                 "month's first working day")
        if not resend_reason and delivered(settings, warehouse, period):
            return skipped(period.label, "already delivered to every recipient")
        readiness = period_readiness(settings, warehouse, period)
        items = plan_audiences(settings, period, recipient, resend_reason)
        if readiness.ready:
            try:
                check_marts_cover(settings, warehouse, period, items)
            except PeriodError as error:
                # A period the marts do not cover (data that starts after it, e.g. the
                # month before the first load) is no reason for the nightly trigger to
                # fail every night; a requested or due period still fails loudly.
                if triggered_by_data:
                    return skipped(period.label, str(error))
                raise
    log.info("%s %s: %s", report, period.label, readiness.reason)

    if not readiness.ready:
        if triggered_by_data:
            return skipped(period.label, readiness.reason)
        if period_label:
            raise ReportNotReady(f"{report} {period.label} is not ready: {readiness.reason}")
        notice = send_delayed_notice(settings, period, readiness.reason, run_id=run_id)
        if settings.notifications.audiences.get("reports"):
            from servicepulse.delivery.notify import notify
            from servicepulse.reports.notices import report_delayed

            notify(settings, report_delayed(report, period, readiness.reason))
        raise ReportNotReady(f"{report} {period.label} is not ready at its deadline: "
                             f"{readiness.reason}; delayed notice: {notice.summary()}")
    log.info("%s %s: %d audiences to render, %d e-mails", report, period.label, len(items),
             sum(len(item["recipients"]) for item in items))
    return {"report": report, "period": period.label, "items": items}


def render_and_send(item: dict[str, Any], run_id: str | None = None,
                    settings: Settings | None = None) -> dict[str, Any]:
    """A report DAG's mapped task: one audience of plan_report's items, rendered and
    sent (publishing.publish_audience). A send that a later try may mend (a temporary
    failure, another worker still sending) raises DeliveryIncomplete, so Airflow retries
    this audience alone, and the ledger sends only what did not go; the rest is left to
    finish_report."""
    from servicepulse.delivery.deliver import (
        RETRYABLE_STATUSES,
        DeliveryIncomplete,
        Outcome,
        problem_text,
    )
    from servicepulse.publishing import publish_audience

    settings = settings or load_settings()
    result = publish_audience(settings, item, run_id=run_id)
    log.info("%s %s, %s %s: rendered in %.2f s, e-mails: %s", item["report"], item["period"],
             item["department"] or "organisation", item["locale"], result["seconds"]["render"],
             ", ".join(f"{o['recipient']} {o['status']}" for o in result["outcomes"])
             or "none")
    again = [Outcome(**o) for o in result["outcomes"] if o["status"] in RETRYABLE_STATUSES]
    if again:
        raise DeliveryIncomplete(problem_text(item["report"], item["period"], again))
    return result


def finish_report(items: list[dict[str, Any]] | None, results: list[dict[str, Any]],
                  run_id: str | None = None, settings: Settings | None = None
                  ) -> dict[str, Any]:
    """A report's last step (the report DAG's finish task, run whatever the audiences'
    tasks did): publishing.finish_publishing over their results (archive, index, one
    delivery alert, the run's outcome), then the "report is out" notice. ``items``:
    plan_report's (None: the plan failed; [] nothing to publish)."""
    from servicepulse.publishing import finish_publishing, parse_report_period

    if items is None:
        raise PlanUnfinished("the plan step did not finish, so no audience was published "
                             "(its own failure says why)")
    if not items:
        return {"skipped": "nothing to publish (the plan step logged why)"}
    settings = settings or load_settings()
    report = items[0]["report"]
    period = parse_report_period(report, items[0]["period"])
    published = finish_publishing(settings, period, items, results, run_id=run_id)
    for path in published.reports.values():
        log.info("report %s", path)
    log.info("%s %s delivery: %s", report, period.label, published.delivery.summary())
    _notify_published(settings, report, period, published.delivery)
    return {"report": report, "period": period.label,
            "reports": [str(p) for p in published.reports.values()],
            "delivery": published.delivery.summary()}


def _notify_published(settings: Settings, report: str, period: Any, delivery: Any) -> None:
    """A clean delivery tells the reports audience's channels that the report is out,
    with the headline KPIs (sends that need attention reached the data team from
    delivery.deliver, through the same notifier)."""
    from servicepulse.delivery.notify import notify
    from servicepulse.reports import notices
    from servicepulse.warehouse import connected

    if any(outcome.needs_attention for outcome in delivery.outcomes):
        return
    if settings.notifications.audiences.get("reports"):
        with connected(settings, read_only=True) as warehouse:
            headline = notices.headline_lines(settings, warehouse, period)
        notify(settings, notices.report_out(report, period, delivery, headline))


def nightly_heartbeat(moment: datetime | None, settings: Settings | None = None
                      ) -> dict[str, Any]:
    """The report DAGs' check that the nightly runs at all, at their scheduled moment (a
    stale heartbeat alerts the data team; it never fails the report run)."""
    from servicepulse.heartbeat import check_heartbeat

    if moment is None:
        return {"skipped": "a manual run has no scheduled moment to measure from"}
    result = check_heartbeat(settings or load_settings(), moment)
    if not result["fresh"]:
        log.error("%s", result["summary"])
    return result


def first_working_day(settings: Settings, warehouse: Any, month_start: date) -> date:
    """The month's first working day in the business calendar (dim_dates: public
    holidays, adjusted working weekends and the organisation's overrides)."""
    import pandas as pd

    frame = warehouse.fetch_frame(
        f'select min(calendar_date) as day from "{settings.warehouse.schema("marts")}".'
        f'"dim_dates" where month_start = ? and is_working_day', [month_start])
    day = frame["day"].iloc[0]
    if pd.isna(day):
        log.warning("the business calendar has no working day in %s (calendar.years in "
                    "the settings?); the monthly report is due on the 1st", month_start)
        return month_start
    return day.date() if hasattr(day, "date") else day
