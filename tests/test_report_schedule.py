"""When the weekly report goes out: only after its data passed the gate; at the
deadline, a "delayed" notice instead (once); after the fix, the report (once). And the
DAGs' timetables give one interval per local day and one report per ISO week in
Asia/Shanghai and across both daylight-saving transitions of zones that have them."""

from __future__ import annotations

import email
import runpy
from datetime import date, datetime, timedelta
from email import policy
from zoneinfo import ZoneInfo

import pandas as pd
import pendulum
import pytest

from servicepulse import pipeline
from servicepulse.constants import SOURCES
from servicepulse.delivery.ledger import ledger_rows
from servicepulse.demo.generate import GenerationSpec, generate
from servicepulse.kpis import Period
from servicepulse.quality.runner import QualityGateError
from servicepulse.warehouse import connected
from tests.conftest import settings_for

SH = ZoneInfo("Asia/Shanghai")
SUNDAY, MONDAY, TUESDAY = (datetime(2026, 11, d, tzinfo=SH) for d in (22, 23, 24))
DEADLINE = datetime(2026, 11, 23, 10, tzinfo=SH)  # Monday 10:00, the weekly DAG's cron
RECIPIENTS = [{"email": "ops@example.com", "name": "运营总监", "locale": "zh-CN"},
              {"email": "manager@example.com", "name": "Service Manager", "locale": "en"}]


def _messages(folder):
    return {path.name: email.message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(folder.glob("*.eml"))}


def test_held_week_sends_a_delayed_notice_once_then_the_report_once_fixed(tmp_path):
    sources = tmp_path / "sources"
    generate(GenerationSpec(out=sources, start=date(2026, 10, 19), days=36, seed=5,
                            tickets_per_day=150))  # through Monday 23 November
    settings = settings_for(tmp_path, sources, **{
        "delivery.data_team": ["data.team@example.com"], "delivery.weekly": RECIPIENTS})
    # Two tickets arrive resolved before they were created: Sunday's run is held.
    path = sources / "crm_tickets.csv"
    tickets = pd.read_csv(path, dtype=str, keep_default_na=False)
    single = ~tickets["ticket_id"].duplicated(keep=False)
    early = pd.to_datetime(tickets["updated_at"], format="ISO8601", utc=True) < \
        pd.Timestamp("2026-11-10", tz="UTC")
    bad = tickets.index[single & early & (tickets["resolved_at"] != "")][:2]
    good_resolved = tickets.loc[bad, "resolved_at"].copy()
    tickets.loc[bad, "resolved_at"] = "2020-01-01T00:00:00+08:00"
    tickets.to_csv(path, index=False)
    for source in SOURCES:
        pipeline.load(source, SUNDAY, MONDAY, settings=settings)
    with pytest.raises(QualityGateError):
        pipeline.check_quality("sunday", SUNDAY, MONDAY, "raw", settings=settings)

    # The nightly failed, so its Asset did not fire; had it, nothing would go out.
    assert pipeline.publish_weekly(triggered_by_data=True, settings=settings)["skipped"] \
        == "no interval has passed the gate yet"
    for attempt in ("deadline", "deadline-retry"):
        with pytest.raises(pipeline.ReportNotReady,
                           match="W47 is not ready at its deadline: held by the data-quality "
                                 "gate in run sunday: .*created_at_before_resolved_at"):
            pipeline.publish_weekly(logical_date=DEADLINE, run_id=attempt, settings=settings)
    week_outbox = settings.output_path / "outbox" / "weekly" / "2026-W47"
    notices = _messages(week_outbox / "delayed")
    assert set(notices) == {"ops@example.com.eml", "manager@example.com.eml"}
    assert notices["ops@example.com.eml"]["Subject"] == "[ServicePulse] 服务质量周报 2026-W47 延迟发送"
    english = notices["manager@example.com.eml"]
    assert english["Subject"] == "[ServicePulse] Weekly report 2026-W47 is delayed"
    assert "has not yet passed our quality checks" in english.get_body(("plain",)).get_content()
    assert not english.is_multipart() or not list(english.iter_attachments())
    assert _messages(week_outbox) == {}  # no report
    alerts = _messages(settings.output_path / "outbox" / "alerts")
    delayed_alert = alerts["delivery-weekly-delayed-2026-W47.eml"]
    assert "created_at_before_resolved_at" in delayed_alert.get_body(("plain",)).get_content()

    # The CRM corrects the two tickets on Monday; Monday's nightly run passes.
    corrections = tickets.loc[bad].assign(resolved_at=good_resolved,
                                          updated_at="2026-11-23T23:00:00+08:00")
    pd.concat([tickets, corrections]).to_csv(path, index=False)
    for source in SOURCES:
        pipeline.load(source, MONDAY, TUESDAY, settings=settings)
    pipeline.check_quality("monday", MONDAY, TUESDAY, "raw", settings=settings)
    pipeline.transform(settings=settings)
    pipeline.check_quality("monday", MONDAY, TUESDAY, "marts", settings=settings)

    sent = pipeline.publish_weekly(triggered_by_data=True, run_id="asset", settings=settings)
    assert (sent["period"], sent["delivery"]) == ("2026-W47", "2 sent")
    again = pipeline.publish_weekly(triggered_by_data=True, run_id="asset-2", settings=settings)
    assert again["skipped"] == "already delivered to every recipient"
    assert set(_messages(week_outbox)) == {"ops@example.com.eml", "manager@example.com.eml"}
    with connected(settings) as warehouse:
        rows = ledger_rows(settings, warehouse)
    assert sorted((r["report"], r["recipient"], r["sequence"], r["status"]) for r in rows) == [
        ("weekly", "manager@example.com", 0, "sent"), ("weekly", "ops@example.com", 0, "sent"),
        ("weekly-delayed", "manager@example.com", 0, "sent"),
        ("weekly-delayed", "ops@example.com", 0, "sent")]


def test_a_requested_period_is_refused_until_its_data_passed(tmp_path):
    settings = settings_for(tmp_path, tmp_path / "sources")
    with pytest.raises(pipeline.ReportNotReady,
                       match="2026-W47 is not ready: no data checked through 2026-11-22 yet"):
        pipeline.publish_weekly("2026-W47", settings=settings)


def test_monthly_report_is_due_on_the_first_working_day_of_the_month(tmp_path,
                                                                    copy_of_known_answers):
    """China 2026: 1-7 October are the National Day holiday, so October's deadline (for
    September's review) is Thursday 8 October; 1 November is a Sunday, so November's is
    Monday 2 November. Before it a run does nothing; at it, September's data has no
    passed check here, so every monthly recipient is told the review is delayed, once."""
    settings = copy_of_known_answers(tmp_path,
                                     **{"delivery.data_team": ["data.team@example.com"]})
    for day in range(1, 8):
        early = pipeline.publish_monthly(logical_date=datetime(2026, 10, day, 10, tzinfo=SH),
                                         settings=settings)
        assert early == {"period": "2026-09",
                         "skipped": "not due before 2026-10-08, the month's first working day"}
    assert pipeline.publish_monthly(logical_date=datetime(2026, 11, 1, 10, tzinfo=SH),
                                    settings=settings)["skipped"].startswith(
        "not due before 2026-11-02")
    for attempt in ("deadline", "deadline-retry"):
        with pytest.raises(pipeline.ReportNotReady,
                           match="monthly 2026-09 is not ready at its deadline"):
            pipeline.publish_monthly(logical_date=datetime(2026, 10, 8, 10, tzinfo=SH),
                                     run_id=attempt, settings=settings)
    notices = _messages(settings.output_path / "outbox" / "monthly" / "2026-09" / "delayed")
    assert set(notices) == {"ceo@example.com.eml", "head.b@example.com.eml"}
    assert notices["ceo@example.com.eml"]["Subject"] == \
        "[ServicePulse] Monthly review 2026-09 is delayed"
    assert notices["head.b@example.com.eml"]["Subject"] == \
        "[ServicePulse] 服务质量月度报告 2026-09 延迟发送"
    with pytest.raises(Exception, match="the monthly report covers a month such as 2026-10"):
        pipeline.publish_monthly("2026-W40", settings=settings)


def _dag(monkeypatch, filename: str, zone: str):
    import importlib

    from airflow.sdk import DAG

    from servicepulse import dag_common

    with monkeypatch.context() as patched:
        patched.setenv("SERVICEPULSE_REPORTING_TIMEZONE", zone)
        importlib.reload(dag_common)  # it reads the zone when imported, as a DAG file does
        namespace = runpy.run_path(str(pipeline.__file__).replace(
            "src/servicepulse/pipeline.py", f"dags/{filename}"))
        built = namespace[filename.removesuffix(".py")]
        dag = built if isinstance(built, DAG) else built()  # the @dag factory builds it
    importlib.reload(dag_common)  # later tests see the environment's zone again
    return dag


def _runs(timetable, start: datetime, count: int):
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(earliest=pendulum.instance(start), latest=None, catchup=True)
    last, runs = None, []
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last,
                                          restriction=restriction)
        runs.append(info)
        last = info.data_interval
    return runs


@pytest.mark.parametrize("zone, start", [
    ("Asia/Shanghai", datetime(2026, 3, 1)),
    ("Europe/Berlin", datetime(2026, 3, 25)),     # clocks go forward on 29 March
    ("Europe/Berlin", datetime(2026, 10, 21)),    # and back on 25 October
    ("America/New_York", datetime(2026, 3, 4)),   # 8 March
    ("America/New_York", datetime(2026, 10, 28)),  # 1 November
])
def test_nightly_intervals_are_whole_local_days_across_daylight_saving(monkeypatch, zone, start):
    tz = ZoneInfo(zone)
    settings = settings_for_zone(zone)
    dag = _dag(monkeypatch, "servicepulse_nightly.py", zone)
    runs = _runs(dag.timetable, start.replace(tzinfo=tz), 14)
    days = []
    for run in runs:
        local_start, local_end = pipeline.local_day_interval(
            settings, run.data_interval.start, run.data_interval.end)  # raises if not
        assert local_end.date() - local_start.date() == timedelta(days=1)
        days.append(local_start.date())
    assert days == [start.date() + timedelta(days=i) for i in range(14)]
    lengths = {(r.data_interval.end - r.data_interval.start).total_seconds() / 3600
               for r in runs}
    assert lengths == ({24.0} if zone == "Asia/Shanghai" else {23.0, 24.0} if start.month == 3
                       else {24.0, 25.0})


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin", "America/New_York"])
def test_weekly_deadline_runs_once_a_week_for_consecutive_weeks(monkeypatch, zone):
    tz = ZoneInfo(zone)
    dag = _dag(monkeypatch, "servicepulse_weekly_report.py", zone)
    # Asset-or-time: the nightly's checked marts, or the deadline on the clock.
    assert dag.timetable.asset_condition.uri == "servicepulse://quality/kpi_marts_checked"
    runs = _runs(dag.timetable.timetable, datetime(2026, 2, 20, tzinfo=tz), 45)
    weeks = []
    for run in runs:
        local = run.run_after.in_timezone(zone)
        assert (local.isoweekday(), local.hour, local.minute) == (1, 10, 0)
        weeks.append(Period.last_complete_week(local.date()))
    assert [w.start for w in weeks] == [weeks[0].start + timedelta(weeks=i)
                                        for i in range(len(weeks))]


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin", "America/New_York"])
def test_monthly_deadline_checks_run_at_ten_on_the_first_ten_days_of_each_month(monkeypatch,
                                                                              zone):
    """The monthly DAG wakes at 10:00 local on days 1-10 (the step sends on the month's
    first working day, see above): through both daylight-saving changes every wake-up
    is at 10:00 local, and each month's ten wake-ups all ask for the month before."""
    tz = ZoneInfo(zone)
    dag = _dag(monkeypatch, "servicepulse_monthly_report.py", zone)
    assert dag.timetable.asset_condition.uri == "servicepulse://quality/kpi_marts_checked"
    runs = _runs(dag.timetable.timetable, datetime(2026, 1, 1, tzinfo=tz), 120)
    due: dict[str, list[int]] = {}
    for run in runs:
        local = run.run_after.in_timezone(zone)
        assert (local.hour, local.minute) == (10, 0)
        due.setdefault(Period.last_complete_month(local.date()).label, []).append(local.day)
    assert list(due) == ["2025-12"] + [f"2026-{month:02d}" for month in range(1, 12)]
    assert all(days == list(range(1, 11)) for days in due.values())


def settings_for_zone(zone: str):
    from servicepulse.settings import Settings

    return Settings(reporting_timezone=zone)
