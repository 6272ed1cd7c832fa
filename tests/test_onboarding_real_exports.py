"""Real exports no one on this project wrote, onboarded by configuration alone.

Both NYC 311 extracts in ../shared/real-data/nyc311 are loaded as the ticket source of a
311 line with the shipped configurations in config/onboarding/ (no code path knows
them), in America/New_York, then built and read back as `servicepulse kpis` reads them.
Every expected figure is computed here from the CSV with the standard library.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from servicepulse.cli import main
from servicepulse.constants import SOURCES
from servicepulse.kpis import Period, kpi_document, slice_rows
from servicepulse.load import load_source
from servicepulse.settings import PROJECT_ROOT, load_settings
from servicepulse.transform import build
from servicepulse.warehouse import connected

REAL_DATA = PROJECT_ROOT.parent / "shared" / "real-data" / "nyc311"
ONBOARDING = PROJECT_ROOT / "config" / "onboarding"
PORTAL_TIME = "%m/%d/%Y %I:%M:%S %p"      # 06/20/2016 10:04:21 PM
API_TIME = "%Y-%m-%dT%H:%M:%S.%f"         # 2023-12-10T00:25:57.000
OPEN_STATUSES = {"Open", "Assigned", "In Progress", "Started", "Pending"}

# The KPIs a 311 ticket export cannot support, and the one reason each must give.
NOT_MEASURABLE = {
    "FRT": "crm_tickets source has no first_response_at",
    # Due N working days after creation by priority: a source without priorities
    # gives no due day (a mapping could set constants: {priority: general}).
    "RES_RATE": "crm_tickets source has no priority",
    "RESP_SLA": "crm_tickets source has no first_response_at",
    "FCR": "crm_tickets source has no contacts_to_resolve",
    "AHT": "crm_tickets source has no handle_seconds",
    "CMP_RATE": "no complaints source is connected",
    "CMP_SOLUTION_24H": "no complaints source is connected",
    "STEP_CLASSIFY_30M": "no complaints source is connected",
    "CSAT": "no survey_responses source is connected",
    "NPS": "no survey_responses source is connected",
    "TPS": "no audits source is connected",
}

EXPORTS = {
    "portal-2016": {
        "config": "nyc311-2016-portal.yaml",
        "file": "service_requests_2016_brooklyn_cb6.csv",
        "fmt": PORTAL_TIME,
        "id": "Unique Key", "created": "Created Date", "closed": "Closed Date",
        "agency": "Agency", "status": "Status", "updated": "Resolution Action Updated Date",
        "due": "Due Date",
    },
    "api-2023": {
        "config": "nyc311-2023-api.yaml",
        "file": "service_requests_2023-12-10.csv",
        "fmt": API_TIME,
        "id": "unique_key", "created": "created_date", "closed": "closed_date",
        "agency": "agency", "status": "status", "updated": "resolution_action_updated_date",
        "due": None,
    },
}


def _rows(export: dict) -> list[dict[str, str]]:
    with (REAL_DATA / export["file"]).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _local(text: str, fmt: str) -> datetime | None:
    """A New York wall time as the file writes it (the reporting zone is New York too,
    so local period boundaries need no conversion)."""
    return datetime.strptime(text, fmt) if text else None


def _iso_week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def _version(row: dict[str, str], export: dict) -> datetime:
    # The configuration's fallbacks: last action, else closing, else creation.
    fmt = export["fmt"]
    return next(_local(row[c], fmt) for c in (export["updated"], export["closed"],
                                              export["created"]) if row[c])


@pytest.fixture(scope="module", params=sorted(EXPORTS))
def onboarded(request, tmp_path_factory):
    """The export loaded (every source, as `servicepulse load all` does) for the local
    day of its newest version, and the marts built, in a warehouse of its own."""
    export = EXPORTS[request.param]
    rows = _rows(export)
    folder = tmp_path_factory.mktemp(request.param)
    settings = load_settings(_config_with_output(ONBOARDING / export["config"], folder),
                             environ={})
    last_day = max(_version(row, export) for row in rows).date()
    start = datetime.combine(last_day, time(), settings.tz)
    with connected(settings) as warehouse:
        loads = {source: load_source(settings, warehouse, source, start,
                                     start + timedelta(days=1)) for source in SOURCES}
    build(settings)
    return export, rows, settings, loads


def test_every_row_loads_and_nothing_is_quarantined(onboarded):
    _, rows, _, loads = onboarded
    tickets = loads["crm_tickets"]
    assert tickets.rows_in_delivery == tickets.rows_loaded == len(rows)
    assert tickets.rows_quarantined == 0
    # The other systems are not connected: nothing loads, nothing fails.
    assert all(loads[s].rows_in_delivery == 0 for s in SOURCES if s != "crm_tickets")


def test_requests_per_iso_week_match_an_independent_count(onboarded):
    export, rows, settings, _ = onboarded
    per_week = Counter(_iso_week(_local(row[export["created"]], export["fmt"])) for row in rows)
    with connected(settings, read_only=True) as warehouse:
        for week, expected in per_week.items():
            document = kpi_document(settings, warehouse, Period.parse(week))
            assert document["kpis"]["TICKETS"]["value"] == expected, week
    assert sum(per_week.values()) == len(rows)


def test_requests_per_agency_match_an_independent_count(onboarded):
    export, rows, settings, _ = onboarded
    per_agency = Counter(row[export["agency"]] for row in rows)
    created = [_local(row[export["created"]], export["fmt"]).date() for row in rows]
    with connected(settings, read_only=True) as warehouse:
        department_rows = slice_rows(settings, warehouse, "day", min(created), max(created),
                                     "department")
    totals = Counter()
    for row in department_rows:
        if row["kpi_id"] == "TICKETS":
            totals[row["dimension_value"]] += row["value"]
    assert totals == per_agency


def test_closed_share_and_open_backlog_match_the_statuses(onboarded):
    export, rows, settings, _ = onboarded
    closed = sum(row[export["status"]] == "Closed" for row in rows)
    assert all(row[export["status"]] in OPEN_STATUSES | {"Closed"} for row in rows)
    # The data's "now" is the newest version; an item is open then if it was created
    # before it and is not closed (the closing time is empty while open).
    as_of = max(_version(row, export) for row in rows)
    still_open = sum(1 for row in rows if not row[export["closed"]]
                     and _local(row[export["created"]], export["fmt"]) < as_of)
    with connected(settings, read_only=True) as warehouse:
        statuses = warehouse.fetch_frame(
            "select status, count(*) as n from marts.fct_tickets group by status")
        document = kpi_document(settings, warehouse, Period.parse(as_of.date().isoformat()))
    counts = dict(zip(statuses["status"], statuses["n"], strict=True))
    assert counts.get("closed", 0) / len(rows) == closed / len(rows)
    assert counts.get("open", 0) == len(rows) - closed
    assert document["kpis"]["BACKLOG"]["value"] == still_open
    assert document["complete"] is False       # the day of the newest change is not over


def test_on_time_share_against_the_agency_due_date(onboarded):
    export, rows, settings, _ = onboarded
    fmt = export["fmt"]
    if export["due"] is None:
        # No due date in this export: on-time delivery is not measured, never 0 %.
        week = _iso_week(_local(rows[0][export["created"]], fmt))
        with connected(settings, read_only=True) as warehouse:
            kpi = kpi_document(settings, warehouse, Period.parse(week))["kpis"]["ON_TIME_DELIVERY"]
        assert (kpi["status"], kpi["value"]) == ("not_measured", None)
        return
    # ON_TIME_DELIVERY counts a request with a due date in the ISO week it was closed:
    # closed by the due time or not.
    on_time, due = Counter(), Counter()
    for row in rows:
        if row[export["due"]] and row[export["closed"]]:
            week = _iso_week(_local(row[export["closed"]], fmt))
            due[week] += 1
            on_time[week] += _local(row[export["closed"]], fmt) <= _local(row[export["due"]], fmt)
    assert sum(due.values()) > 0 and sum(on_time.values()) < sum(due.values())
    with connected(settings, read_only=True) as warehouse:
        for week in due:
            kpi = kpi_document(settings, warehouse, Period.parse(week))["kpis"]["ON_TIME_DELIVERY"]
            assert (kpi["numerator"], kpi["denominator"]) == (on_time[week], due[week]), week
            assert kpi["value"] == pytest.approx(on_time[week] / due[week])


def test_kpis_the_export_cannot_support_are_not_measured(onboarded, capsys):
    export, rows, settings, _ = onboarded
    week = _iso_week(_local(rows[0][export["created"]], export["fmt"]))
    assert main(["kpis", "--period", week, "--format", "json",
                 "--config", str(settings.config_file)]) == 0
    document = json.loads(capsys.readouterr().out)
    expected = dict(NOT_MEASURABLE)
    if export["due"] is None:
        expected["ON_TIME_DELIVERY"] = "crm_tickets source has no delivered_at"
    for kpi_id, reason in expected.items():
        kpi = document["kpis"][kpi_id]
        assert kpi["status"] == "not_measured" and kpi["reason"] == reason, kpi_id
        assert kpi["value"] is None and kpi["numerator"] is None and kpi["denominator"] is None
    assert document["kpis"]["TICKETS"]["status"] != "not_measured"
    assert document["kpis"]["BACKLOG"]["status"] != "not_measured"


def test_dry_run_says_what_would_load_and_writes_nothing(onboarded, tmp_path, capsys):
    export, rows, settings, _ = onboarded
    last_day = max(_version(row, export) for row in rows).date()
    empty = tmp_path / "never-written"
    config = _config_with_output(settings.config_file, empty)
    assert main(["load", "crm_tickets", "--date", last_day.isoformat(), "--dry-run",
                 "--format", "json", "--config", str(config)]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["rows_read"] == result["rows_loaded"] == len(rows)
    assert result["rows_quarantined"] == 0
    assert "TICKETS" in result["measurable"] and "BACKLOG" in result["measurable"]
    assert result["not_measured"]["FRT"] == NOT_MEASURABLE["FRT"]
    assert not empty.exists()                  # no warehouse, no landing zone


def _config_with_output(original: Path, output: Path) -> Path:
    """The shipped configuration with its output folders moved to ``output`` (the file
    is written beside it, so nothing is created inside ``output`` itself)."""
    import yaml

    config = yaml.safe_load(original.read_text(encoding="utf-8"))
    config.update(output_dir=str(output), airflow_home=str(output / "airflow"))
    config["warehouse"]["duckdb_path"] = str(output / "warehouse.duckdb")
    config["sources"]["directory"] = str(REAL_DATA)
    path = output.parent / f"{output.name}-config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_the_shipped_configurations_name_only_contract_fields():
    # A typo in the mapping (a field the contract does not have) would silently read
    # nothing; every mapped, absent, fallback or rule field must be a contract field.
    from servicepulse.sources.contracts import load_contracts

    fields = set(load_contracts()["crm_tickets"].column_names)
    for export in EXPORTS.values():
        mapping = load_settings(ONBOARDING / export["config"], environ={}) \
            .sources.connectors["crm_tickets"].mapping
        named = {f for column in mapping.columns for f in mapping.fields_of(column)}
        named |= set(mapping.absent) | set(mapping.fallbacks) | set(mapping.values) \
            | set(mapping.value_patterns)
        assert named <= fields, named - fields


def test_a_date_without_time_stays_that_local_date(tmp_path):
    """A date-only export in New York, reported in Shanghai (13 hours ahead): the date
    must not move a day back (midnight New York is 13:00 Shanghai) nor forward, and no
    time of day is invented."""
    from tests.conftest import settings_for

    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "audits.csv").write_text(
        "id,kind,dept,date,s1,s2,s3\n"
        "A1,process_audit,d_a,2023-04-05,8,8,8\n"
        "A2,mystery_shopper,d_b,04/30/2023,7,7,7\n", encoding="utf-8")
    settings = settings_for(tmp_path, sources, **{"sources.connectors": {"audits": {
        "location": "audits.csv",
        "mapping": {"timezone": "America/New_York",
                    "timestamp_formats": {"*": ["%m/%d/%Y"]},
                    "columns": {"id": "audit_id", "dept": "department",
                                "date": ["audited_at", "updated_at"],
                                "s1": "score_1", "s2": "score_2", "s3": "score_3"},
                    "absent": ["agent_id"]}}}})
    with connected(settings) as warehouse:
        result = load_source(settings, warehouse, "audits",
                             datetime(2023, 5, 1, tzinfo=settings.tz),
                             datetime(2023, 5, 2, tzinfo=settings.tz))
        assert result.rows_loaded == 2 and result.rows_quarantined == 0
        frame = warehouse.fetch_frame(
            "select audit_id, audited_at, _original from raw.audits order by audit_id")
    local = [ts.tz_convert("Asia/Shanghai") for ts in frame["audited_at"]]
    assert [(t.date(), t.hour, t.minute) for t in local] == [
        (date(2023, 4, 5), 0, 0), (date(2023, 4, 30), 0, 0)]
    # The delivered text is kept beside the mapped value.
    assert json.loads(frame["_original"][1])["date"] == "04/30/2023"


def test_the_quality_gate_passes_on_what_the_export_has(onboarded):
    """Great Expectations on the onboarded export, for the day it was loaded: no check
    of a field the source lacks by configuration (customer_id, priority ...), no suite of
    a system that is not connected, and every other check runs and passes."""
    from servicepulse.quality.runner import run_checks

    export, rows, settings, _ = onboarded
    last_day = max(_version(row, export) for row in rows).date()
    end = datetime.combine(last_day + timedelta(days=1), time(), settings.tz)
    report = run_checks(settings, "onboarding", end - timedelta(days=1), end)
    suites = {result.suite for result in report.results}
    assert "raw_crm_tickets" in suites and "marts_kpi_weekly" in suites
    assert not suites & {"raw_complaints", "raw_survey_responses", "raw_audits",
                         "raw_crm_customers"}
    checks = {result.check for result in report.results if result.suite == "raw_crm_tickets"}
    assert "ticket_id_not_null" in checks and "customer_id_not_null" not in checks
    assert [r for r in report.results if not r.success and r.severity == "critical"] == []
    warned = {(r.suite, r.check) for r in report.results if not r.success}
    newest = max(_version(row, export) for row in rows)
    # A true finding, which the configuration makes a warning for so small a source:
    # the extract stops hours before its day ends (the 2023 one at noon), more than
    # crm_tickets' 6 h freshness lag.
    assert (("raw_crm_tickets", "freshness") in warned) == (newest.hour < 24 - 6)


def test_the_onboarding_guide_shows_the_shipped_configuration_in_full():
    import yaml

    readme = (PROJECT_ROOT / "docs" / "onboarding.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Worked example: a real export (NYC 311).**"):]
    block = section[section.index("```yaml\n") + 8:section.index("```\n", section.index("```yaml"))]
    shipped = (ONBOARDING / "nyc311-2016-portal.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(block) == yaml.safe_load(shipped)
