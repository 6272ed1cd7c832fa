"""Any reporting time zone: the same kind of data built in Asia/Shanghai, America/New_York,
Europe/Berlin and UTC gives, per local day, ISO week (Monday first) and calendar month,
the ticket and complaint counts an independent computation with zoneinfo gives.

The instants straddle local midnights, the ISO week boundaries of Sunday 1 March and
Sunday 1 November 2026, the month boundaries of 1 March and 1 November, and both
daylight-saving changes of New York (Sunday 8 March 02:00 -> 03:00, Sunday 1 November
02:00 -> 01:00: the repeated hour is there twice, once at -04:00 and once at -05:00)
and of Berlin (29 March, 25 October). The counts are the CMP_RATE rows of kpi_daily,
kpi_weekly and kpi_monthly (organisation): numerator = complaints received, denominator
= tickets created in the local period.

Each zone's build also passes its dbt unit and data tests and every quality check.

Cost: one load + dbt build per zone on DuckDB (about 20 s each on this 2-core machine)
and its quality checks (about 15 s), and one build on PostgreSQL for New York (about
50 s): 49 tests in about 3 minutes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from servicepulse.kpis import Period, kpi_document, kpi_table
from servicepulse.warehouse import connected
from tests import known_answers
from tests.conftest import settings_for
from tests.kpi_harness import load_and_build

ZONES = ["Asia/Shanghai", "America/New_York", "Europe/Berlin", "UTC"]
GRAINS = ["day", "week", "month"]

# UTC windows around every boundary above, an instant every 37 minutes (not a divisor
# of an hour, so the instants fall at every minute of the hour across a window).
SERIES_WINDOWS = [
    (datetime(2026, 2, 27, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)),        # 1 March
    (datetime(2026, 3, 7, 12, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)),   # NY spring
    (datetime(2026, 3, 28, 12, tzinfo=UTC), datetime(2026, 3, 30, 12, tzinfo=UTC)),  # Berlin
    (datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 26, 12, tzinfo=UTC)),  # Berlin
    (datetime(2026, 10, 30, 12, tzinfo=UTC), datetime(2026, 11, 3, 12, tzinfo=UTC)),  # 1 Nov
]
SERIES_STEP = timedelta(minutes=37)
# Local days whose midnight each zone's data straddles (a second before, at midnight).
BOUNDARY_DAYS = [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 8), date(2026, 3, 9),
                 date(2026, 3, 29), date(2026, 3, 30), date(2026, 10, 25), date(2026, 10, 26),
                 date(2026, 11, 1), date(2026, 11, 2)]
# Local wall-clock times at a zone's daylight-saving changes: (wall time, fold).
# fold=1 is the second pass through a repeated hour (after the clocks went back).
DST_WALL_TIMES = {
    "America/New_York": [
        (datetime(2026, 3, 8, 1, 59, 59), 0),   # the last second of EST
        (datetime(2026, 3, 8, 3, 0, 0), 0),     # the first of EDT (02:00-02:59 never happen)
        (datetime(2026, 11, 1, 1, 0, 0), 0),    # 05:00Z, EDT
        (datetime(2026, 11, 1, 1, 30, 0), 0),   # 05:30Z, EDT
        (datetime(2026, 11, 1, 1, 30, 0), 1),   # 06:30Z, EST: the same wall time again
        (datetime(2026, 11, 1, 1, 59, 59), 1),  # 06:59:59Z
        (datetime(2026, 11, 1, 23, 59, 59), 0),  # 2 Nov 04:59:59Z: still 1 November
    ],
    "Europe/Berlin": [
        (datetime(2026, 3, 29, 1, 59, 59), 0),
        (datetime(2026, 3, 29, 3, 0, 0), 0),
        (datetime(2026, 10, 25, 2, 30, 0), 0),  # 00:30Z, CEST
        (datetime(2026, 10, 25, 2, 30, 0), 1),  # 01:30Z, CET
    ],
}
# The loader's interval ends after every instant and change above, in any zone.
UNTIL_DAY = date(2026, 11, 6)


def instants_for(zone_name: str) -> list[tuple[datetime, str]]:
    """Each ticket's creation instant and how the CSV writes it: the series in UTC
    ("...Z"), the zone's own wall times with the offset they had then ("...-05:00")."""
    zone = ZoneInfo(zone_name)
    instants = []
    for start, end in SERIES_WINDOWS:
        instant = start
        while instant < end:
            instants.append((instant, instant.strftime("%Y-%m-%dT%H:%M:%SZ")))
            instant += SERIES_STEP
    walls = [(datetime.combine(day, datetime.min.time()) + shift, 0)
             for day in BOUNDARY_DAYS for shift in (timedelta(seconds=-1), timedelta(0))]
    for wall, fold in walls + DST_WALL_TIMES.get(zone_name, []):
        local = wall.replace(tzinfo=zone, fold=fold)
        instants.append((local.astimezone(UTC), local.isoformat()))
    return instants


def _utc_text(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_sources(directory: Path, instants: list[tuple[datetime, str]]) -> Path:
    """Tickets created at the instants (answered after 5 minutes, resolved after 20), and
    a complaint received at every third ticket's creation instant, closed with a callback
    the next day. Customers are the known-answer set's."""
    directory.mkdir(parents=True, exist_ok=True)
    tickets = [known_answers.TICKETS.splitlines()[0]]
    complaints = [known_answers.COMPLAINTS.splitlines()[0]]
    first = _utc_text(instants[0][0] + timedelta(hours=1))
    for number, (instant, written) in enumerate(instants):
        responded, resolved = (_utc_text(instant + timedelta(minutes=m)) for m in (5, 20))
        tickets.append(f"T{number:04d},C1,phone,tech_support,d_a,A1,general,{written},"
                       f"{responded},{resolved},,1,300,resolved,,,{resolved}")
        if number % 3 == 0:
            classified, dispatched, solution, closed, callback = (
                _utc_text(instant + timedelta(minutes=m)) for m in (10, 30, 120, 180, 1440))
            complaints.append(f"P{number:04d},T{number:04d},C1,billing,general,{written},"
                              f"{classified},{dispatched},{solution},{closed},{callback},,d_a,"
                              f"closed,{callback}")
    files = {"crm_customers.csv": known_answers.CUSTOMERS,
             "crm_tickets.csv": "\n".join(tickets) + "\n",
             "complaints.csv": "\n".join(complaints) + "\n",
             # One survey and one audit: a file of headers alone fails the loader.
             "surveys.csv": known_answers.SURVEYS.splitlines()[0] + "\n"
             f"S0,T0000,,C1,{first},{first},5,10,5,5,5,,{first}\n",
             "audits.csv": known_answers.AUDITS.splitlines()[0] + "\n"
             f"AU1,process_audit,d_a,A1,{first},8,8,8,{first}\n"}
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def local_periods(instant: datetime, zone: ZoneInfo) -> dict[str, date]:
    """The first day of each local period the instant falls in, computed here with
    zoneinfo and date arithmetic only (no project code)."""
    day = instant.astimezone(zone).date()
    return {"day": day,
            "week": day - timedelta(days=day.weekday()),   # Monday = weekday 0
            "month": day.replace(day=1)}


def expected_counts(instants: list[tuple[datetime, str]], zone_name: str,
                    grain: str) -> dict[date, tuple[int, int]]:
    """Period start -> (complaints received, tickets created), periods with any."""
    zone = ZoneInfo(zone_name)
    tickets = Counter(local_periods(instant, zone)[grain] for instant, _ in instants)
    complaints = Counter(local_periods(instant, zone)[grain]
                         for number, (instant, _) in enumerate(instants) if number % 3 == 0)
    return {start: (complaints[start], tickets[start]) for start in tickets}


def counts_in_marts(settings, grain: str) -> dict[date, tuple[int, int]]:
    """Period start -> (CMP_RATE numerator, denominator) of the organisation, periods
    with any ticket or complaint."""
    with connected(settings) as warehouse:
        frame = warehouse.fetch_frame(
            f"select period_start, numerator, denominator from {kpi_table(settings, grain)} "
            "where kpi_id = 'CMP_RATE' and dimension = 'organisation'")
    return {date.fromisoformat(str(start)[:10]): (int(numerator or 0), int(denominator))
            for start, numerator, denominator in frame.itertuples(index=False)
            if (numerator or 0) or denominator}


@pytest.fixture(scope="module", params=ZONES)
def built_zone(request, tmp_path_factory):
    zone_name = request.param
    tmp = tmp_path_factory.mktemp(zone_name.replace("/", "_"))
    instants = instants_for(zone_name)
    # No freshness lag: the data's last change lies days before the checked interval.
    settings = settings_for(tmp, write_sources(tmp / "sources", instants),
                            reporting_timezone=zone_name,
                            **{"quality.freshness_lag_hours": {}})
    # load_and_build raises (naming the failing dbt node) if a unit or data test fails.
    load_and_build(settings, datetime.combine(UNTIL_DAY, datetime.min.time(),
                                              ZoneInfo(zone_name)))
    return zone_name, instants, settings


@pytest.mark.parametrize("grain", GRAINS)
def test_counts_per_local_period_equal_zoneinfo(built_zone, grain):
    zone_name, instants, settings = built_zone
    expected = expected_counts(instants, zone_name, grain)
    assert sum(tickets for _, tickets in expected.values()) == len(instants)
    assert counts_in_marts(settings, grain) == expected


def test_the_data_tells_the_zone_apart(built_zone):
    """The counts above could only pass with the right zone: each other zone of the
    matrix puts this data's tickets into different local days."""
    zone_name, instants, _ = built_zone
    own = expected_counts(instants, zone_name, "day")
    for other in ZONES:
        if other != zone_name:
            assert expected_counts(instants, other, "day") != own, other


def test_the_weekly_report_states_the_zones_as_of_moment(built_zone):
    """The weekly report's data (report_inputs, then the builder) for ISO week 44 in the
    zone: the as-of moment is the newest change in tickets and complaints (the marts' one
    definition: here the last complaint's callback, a day after its receipt, unless a
    later ticket's resolution comes after it) as local time with the offset it had then;
    the KPI figures are those of the marts checked above."""
    from servicepulse.publishing import REPORTS
    from servicepulse.reports.data import report_inputs

    zone_name, instants, settings = built_zone
    period = Period.parse("2026-W44")
    with connected(settings) as warehouse:
        inputs = report_inputs(settings, warehouse, period, None)
    context = REPORTS["week"][1](period, "en", None, **inputs)
    # write_sources: a ticket's last change is its resolution 20 minutes after creation,
    # a complaint's (every third ticket's) its callback 1440 minutes after receipt.
    changes = [instant + timedelta(minutes=20) for instant, _ in instants] + \
        [instant + timedelta(minutes=1440) for instant, _ in instants[::3]]
    newest = max(changes).astimezone(ZoneInfo(zone_name))
    offset = newest.strftime("%z")
    assert context["data_as_of"] == newest.isoformat()
    assert f"{newest:%H:%M} (UTC{offset[:3]}:{offset[3:]})" in context["data_as_of_text"]


def test_every_quality_check_passes_in_the_zone(built_zone):
    """The Great Expectations suites (raw and marts) on the zone's build, for the local
    day the loader's interval ended with: nothing in them assumes another zone's day."""
    from servicepulse.quality.runner import run_checks

    zone_name, _, settings = built_zone
    end = datetime.combine(UNTIL_DAY, datetime.min.time(), ZoneInfo(zone_name))
    report = run_checks(settings, "time-zone-matrix", end - timedelta(days=1), end)
    assert {result.suite for result in report.results} >= {
        "raw_crm_tickets", "raw_complaints", "marts_kpi_daily", "marts_kpi_weekly",
        "marts_kpi_monthly"}
    assert [result for result in report.results if not result.success] == []


@pytest.mark.postgres
def test_new_york_on_postgresql_equals_zoneinfo(tmp_path, postgres_prefix):
    """The same New York data built on PostgreSQL (its own `at time zone`, no offset
    span): the same per-period counts as the independent computation."""
    zone_name = "America/New_York"
    instants = instants_for(zone_name)
    settings = settings_for(tmp_path, write_sources(tmp_path / "sources", instants),
                            reporting_timezone=zone_name,
                            **{"warehouse.kind": "postgres",
                               "warehouse.schema_prefix": postgres_prefix})
    load_and_build(settings, datetime.combine(UNTIL_DAY, datetime.min.time(),
                                              ZoneInfo(zone_name)))
    for grain in GRAINS:
        assert counts_in_marts(settings, grain) == expected_counts(instants, zone_name, grain), grain


# Hours of the local days around the daylight-saving changes, where a zone has them.
DAY_HOURS = {"America/New_York": {date(2026, 3, 8): 23, date(2026, 11, 1): 25},
             "Europe/Berlin": {date(2026, 3, 29): 23, date(2026, 10, 25): 25}}


@pytest.mark.parametrize("day", [date(2026, 3, 8), date(2026, 3, 29), date(2026, 10, 25),
                                 date(2026, 11, 1)])
def test_a_day_of_23_or_25_hours_counts_all_its_hours(built_zone, day):
    """A local day runs from its midnight to the next, however long that is: New York's
    1 November lasts 25 hours (04:00Z to 05:00Z the next day; both 01:30s and 23:59:59
    belong to it), its 8 March 23; Berlin's 29 March 23 and 25 October 25; every other
    zone's day here 24. The tickets of the mart's day are those between the two
    midnights as instants."""
    zone_name, instants, settings = built_zone
    zone = ZoneInfo(zone_name)
    first = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    assert end - first == timedelta(hours=DAY_HOURS.get(zone_name, {}).get(day, 24))
    tickets = sum(1 for instant, _ in instants if first <= instant < end)
    assert tickets > 0
    assert counts_in_marts(settings, "day")[day][1] == tickets
    if zone_name == "America/New_York" and day == date(2026, 11, 1):
        twice = [written for _, written in instants if written.startswith("2026-11-01T01:30")]
        assert twice == ["2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00"]


def test_the_reports_read_the_same_week(built_zone):
    """The reports' KPI document (kpis.kpi_document) for the ISO week that starts
    Monday 26 October gives that week's count: Sunday 1 November is its last day."""
    zone_name, instants, settings = built_zone
    expected = expected_counts(instants, zone_name, "week")[date(2026, 10, 26)]
    with connected(settings) as warehouse:
        document = kpi_document(settings, warehouse, Period.parse("2026-W44"))
    cmp_rate = document["kpis"]["CMP_RATE"]
    assert (int(cmp_rate["numerator"]), int(cmp_rate["denominator"])) == expected


@pytest.mark.parametrize("zone_name", ZONES)
def test_the_quality_panel_names_the_last_checked_local_day(tmp_path, zone_name):
    """A report's quality panel says "checked through <the interval's last local day>".
    New York's interval for 8 March lasts 23 hours: 24 hours before its end (9 March
    00:00 EDT) is 7 March 23:00 EST, which once made the panel say 7 March."""
    from servicepulse.quality.runner import RESULT_COLUMNS
    from servicepulse.reports.data import latest_quality

    settings = settings_for(tmp_path, tmp_path, reporting_timezone=zone_name)
    zone = ZoneInfo(zone_name)
    start = datetime.combine(date(2026, 3, 8), datetime.min.time(), zone)
    end = datetime.combine(date(2026, 3, 9), datetime.min.time(), zone)
    quality = settings.warehouse.schema("quality")
    with connected(settings) as warehouse:
        warehouse.execute(f'create schema "{quality}"')
        warehouse.execute(f'create table "{quality}"."check_results" ('
                          + ", ".join(f"{name} {kind}" for name, kind in RESULT_COLUMNS) + ")")
        warehouse.execute(
            f'insert into "{quality}"."check_results" (run_id, checked_at, interval_start, '
            "interval_end, layer, suite, check_name, severity, success) "
            "values ('r1', ?, ?, ?, 'marts', 'marts_kpi_daily', 'period_start_not_null', "
            "'critical', true)",
            [end.astimezone(UTC), start.isoformat(), end.isoformat()])
        snapshot = latest_quality(settings, warehouse, Period.parse("2026-03-08"))
    assert snapshot.checked_through == date(2026, 3, 8)
