"""Any history: a real export from 2016 run night by night through Airflow, with the
DAGs' start date and the business calendar taken from configuration and data, and a
day the DAGs cannot run refused loudly (never "success" with no task)."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date, datetime

import pytest
import yaml

from servicepulse.airflow_runner import PipelineRunError, run_nightly
from servicepulse.cli import main
from servicepulse.kpis import Period, kpi_document
from servicepulse.settings import PROJECT_ROOT, load_settings
from servicepulse.transform import run_dbt
from servicepulse.warehouse import connected

REAL_DATA = PROJECT_ROOT.parent / "shared" / "real-data" / "nyc311"
EXPORT = REAL_DATA / "service_requests_2016_brooklyn_cb6.csv"
PORTAL_TIME = "%m/%d/%Y %I:%M:%S %p"


def _config(tmp_path, **changes) -> str:
    config = yaml.safe_load((PROJECT_ROOT / "config" / "onboarding" /
                             "nyc311-2016-portal.yaml").read_text(encoding="utf-8"))
    config.update(output_dir=str(tmp_path / "out"), airflow_home=str(tmp_path / "airflow"))
    config["warehouse"]["duckdb_path"] = str(tmp_path / "out" / "warehouse.duckdb")
    config["sources"]["directory"] = str(REAL_DATA)
    config.update(changes)
    path = tmp_path / "nyc311.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_a_day_before_the_start_date_fails_loudly(tmp_path, capsys):
    config = _config(tmp_path, schedule={"start_date": "2016-07-01"})
    with pytest.raises(PipelineRunError, match=r"start on 2016-07-01 \(settings "
                                                r"schedule.start_date\)"):
        run_nightly(load_settings(config, environ={}), date(2016, 6, 30))
    assert main(["run", "--date", "2016-06-30", "--config", config]) != 0
    captured = capsys.readouterr()
    assert "schedule.start_date" in captured.err and "Traceback" not in captured.err


@pytest.mark.airflow
def test_a_2016_export_runs_night_by_night_through_airflow(tmp_path, capsys):
    """A two-night backfill in 2016: every task of both nightly runs ran, the week the
    second night completes (ISO week 28) went out once, and its KPIs are the export's."""
    config = _config(tmp_path, delivery={"weekly": [
        {"email": "ops@example.com", "name": "Operations", "locale": "en"}]})
    assert main(["run", "--date", "2016-07-17", "--to", "2016-07-18",
                 "--config", config]) == 0
    out = capsys.readouterr().out
    assert out.count("servicepulse_nightly for") == 2
    assert out.count("servicepulse_weekly_report for 2016-W28: success") == 1
    settings = load_settings(config, environ={})
    # Both nights ran their tasks (Airflow's own record), not an empty "success".
    import sqlite3

    with sqlite3.connect(settings.airflow_home_path / "airflow.db") as db:
        states = db.execute(
            "select run.logical_date, task.state, count(*) from dag_run as run join "
            "task_instance as task on task.run_id = run.run_id and task.dag_id = run.dag_id "
            "where run.dag_id = 'servicepulse_nightly' group by 1, 2").fetchall()
    assert sorted({(str(logical)[:10], state) for logical, state, _ in states}) == [
        ("2016-07-18", "success"), ("2016-07-19", "success")]
    # Requests created in ISO week 28 (11-17 July 2016, New York time), from the CSV.
    with EXPORT.open(encoding="utf-8", newline="") as handle:
        created = [datetime.strptime(row["Created Date"], PORTAL_TIME)
                   for row in csv.DictReader(handle)]
    per_week = Counter(f"{c.isocalendar()[0]}-W{c.isocalendar()[1]:02d}" for c in created)
    with connected(settings, read_only=True) as warehouse:
        document = kpi_document(settings, warehouse, Period.parse("2016-W28"))
    assert document["kpis"]["TICKETS"]["value"] == per_week["2016-W28"] > 0
    assert list((settings.output_path / "reports" / "weekly" / "2016-W28").glob("*.pdf"))
    assert len(list((settings.output_path / "outbox" / "weekly" / "2016-W28").glob("*.eml"))) == 1


def test_the_business_calendar_covers_the_years_of_the_data(tmp_path):
    """Without first_year/last_year the calendar spans the raw data's years (to the year
    after the newest, where deadlines run on); explicit years stay an override, either
    one alone too."""
    config = _config(tmp_path)
    assert main(["load", "all", "--date", "2016-07-18", "--config", config]) == 0
    # The export's timestamps, all in the same US format: their years, from the CSV.
    with EXPORT.open(encoding="utf-8", newline="") as handle:
        years = {datetime.strptime(value, PORTAL_TIME).year for row in csv.DictReader(handle)
                 for column in ("Created Date", "Closed Date", "Due Date",
                                "Resolution Action Updated Date")
                 if (value := row[column])}
    assert years == {2016}          # so a loaded day's years are the export's years
    settings = load_settings(config, environ={})
    assert main(["build", "--config", config]) == 0

    def calendar_span(settings) -> tuple[date, date, int]:
        with connected(settings) as warehouse:
            first, last, days = warehouse.fetch_frame(
                f"select min(calendar_date), max(calendar_date), count(*) "
                f"from {settings.warehouse.schema('marts')}.dim_dates").iloc[0]
        return first.year, last.year, int(days)

    assert calendar_span(settings) == (2016, 2017, 366 + 365)   # 2016 is a leap year
    for calendar, expected in (({"first_year": 2010, "last_year": 2012}, (2010, 2012)),
                               ({"first_year": 2014}, (2014, 2017)),
                               ({"last_year": 2020}, (2016, 2020))):
        overridden = load_settings(_config(tmp_path, calendar={"country": "US", **calendar}),
                                   environ={})
        run_dbt(overridden, "run", "--select",
                "stg_calendar__data_years int_public_calendar_days dim_dates")
        assert calendar_span(overridden)[:2] == expected

    # A later delivery holding a 2019 timestamp widens the calendar in a nightly build,
    # which reads only the rows loaded since the last: as a full refresh would.
    raw = settings.warehouse.schema("raw")
    with connected(settings) as warehouse:
        columns = warehouse.fetch_frame(
            "select column_name, data_type from information_schema.columns "
            f"where table_schema = '{raw}' and table_name = 'crm_tickets'")
        stamp = next(name for name, kind in zip(columns["column_name"], columns["data_type"])
                     if "TIMESTAMP" in kind.upper() and not name.startswith("_"))
        warehouse.execute(f"create temp table later as select * from {raw}.crm_tickets limit 1")
        warehouse.execute(f"update later set \"{stamp}\" = timestamptz '2019-06-01 12:00:00+00', "
                          "_loaded_at = now()")
        warehouse.execute(f"insert into {raw}.crm_tickets select * from later")
    calendar_models = "stg_calendar__data_years int_public_calendar_days dim_dates"
    run_dbt(settings, "run", "--select", calendar_models)
    assert calendar_span(settings)[:2] == (2016, 2020)
    run_dbt(settings, "run", "--full-refresh", "--select", calendar_models)
    assert calendar_span(settings)[:2] == (2016, 2020)


def test_a_historic_complaint_is_late_to_its_datas_as_of_not_today(tmp_path):
    """A complaint from March 2019 still unclassified when its export ends is late by
    the time from its due moment to the export's newest change, not to the wall clock
    (which would make it years late)."""
    from servicepulse.constants import SOURCES
    from servicepulse.load import load_source
    from servicepulse.transform import build
    from tests.conftest import settings_for

    sources = tmp_path / "sources"
    assert main(["generate", "--out", str(sources), "--start", "2019-03-04", "--days", "10",
                 "--tickets-per-day", "20", "--timezone", "America/New_York"]) == 0
    complaints = sources / "complaints.csv"
    with complaints.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # The first complaint never got past receipt: no step done, still open.
    undone = rows[0]
    for step in ("classified_at", "dispatched_at", "solution_at", "resolved_at",
                 "callback_at"):
        undone[step] = ""
    undone.update(status="open", updated_at=undone["received_at"])
    with complaints.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    # The data's as-of moment: the newest change in tickets and complaints, from the CSVs.
    newest = max(datetime.fromisoformat(row["updated_at"])
                 for name in ("crm_tickets.csv", "complaints.csv")
                 for row in csv.DictReader((sources / name).open(encoding="utf-8")))
    settings = settings_for(tmp_path / "run", sources, reporting_timezone="America/New_York")
    with connected(settings) as warehouse:       # the whole export: March 2019
        for source in SOURCES:
            load_source(settings, warehouse, source, datetime(2019, 3, 1, tzinfo=settings.tz),
                        datetime(2019, 4, 1, tzinfo=settings.tz))
    build(settings)
    with connected(settings, read_only=True) as warehouse:
        late = warehouse.fetch_frame(
            'select step, due_at_local, minutes_late from "'
            + settings.warehouse.schema("marts") + '"."fct_complaint_step_breaches" '
            "where complaint_id = ? and is_still_undone", [undone["complaint_id"]])
    assert not late.empty
    for due_local, minutes in zip(late["due_at_local"], late["minutes_late"]):
        due = due_local.to_pydatetime().replace(tzinfo=settings.tz)
        assert minutes == pytest.approx((newest - due).total_seconds() / 60, abs=1)
        assert minutes < 20 * 24 * 60          # days, not the years to today
