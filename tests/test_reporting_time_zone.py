"""Local times on DuckDB: inside the span in which the reporting zone keeps one UTC
offset, to_reporting_tz adds the offset instead of converting through ICU. It must
give ICU's answer for every instant, inside the span, at its edges and outside it."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
import yaml

from servicepulse.transform import dbt_vars, reporting_utc_offset_span, run_dbt
from tests.conftest import settings_for

AROUND = datetime(2026, 11, 25, 2, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _instant(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin", "America/New_York",
                                  "Asia/Kathmandu", "Australia/Lord_Howe", "UTC"])
def test_the_span_keeps_one_offset_and_ends_where_it_changes(zone):
    span = reporting_utc_offset_span(zone, AROUND)
    tz = ZoneInfo(zone)
    offset = timedelta(microseconds=span["offset_us"])
    first, last = _instant(span["from_us"]), _instant(span["until_us"] - 1)
    assert first <= AROUND <= last and span["zone"] == zone
    instant = first
    while instant <= last:
        assert instant.astimezone(tz).utcoffset() == offset, instant
        instant += timedelta(hours=7)
    assert last.astimezone(tz).utcoffset() == offset
    # Just outside, the offset differs, unless the span reached its search limit.
    for outside, limit in ((first - timedelta(minutes=1), datetime(1970, 1, 1, tzinfo=UTC)),
                           (last + timedelta(minutes=1), datetime(2100, 1, 1, tzinfo=UTC))):
        if abs(outside - limit) > timedelta(minutes=1):
            assert outside.astimezone(tz).utcoffset() != offset, outside


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Shanghai", "America/New_York"])
def test_duckdb_local_times_equal_icu_for_every_instant(tmp_path, zone):
    """The macro as dbt compiles it with the span `servicepulse` passes, evaluated on
    instants every 7 min 13.000001 s from 1985 to 2040 and on each side of the span's
    edges; Berlin's span is one winter, so most instants take the ICU branch, Shanghai's
    runs from 1991 on, so most take the arithmetic one. New York's is one season too,
    and its edges are clock changes: of the hour repeated when the clocks go back, the
    first pass lies on one side of an edge and the second on the other."""
    settings = settings_for(tmp_path, tmp_path, reporting_timezone=zone)
    compiled = run_dbt(settings, "compile", "--quiet", "--inline",
                       "select instant, {{ to_reporting_tz('instant') }} as local_time "
                       "from instants")
    query = compiled.output.strip()
    assert "make_timestamp" in query, query
    span = dbt_vars(settings)["reporting_utc_offset_span"]
    edges = ([span["from_us"] + d for d in (-60_000_000, -1, 0, 1)]
             + [span["until_us"] + d for d in (-2, -1, 0, 60_000_000)])
    connection = duckdb.connect()
    connection.execute(
        "create table instants as "
        "select timestamptz '1985-01-01 00:00:00+00' + to_microseconds(i * 433000001) as instant "
        "from range(0, 4000000) as r(i) "
        f"union all select make_timestamptz(us) from unnest({edges}) as e(us)")
    differing, inside, total = connection.execute(
        f"select count(*) filter (where local_time is distinct from "
        f"timezone('{zone}', instant)), "
        f"count(*) filter (where epoch_us(instant) >= {span['from_us']} "
        f"and epoch_us(instant) < {span['until_us']}), count(*) "
        f"from ({query}) as converted").fetchone()
    assert total == 4_000_008
    assert 10_000 < inside < total - 10_000
    assert differing == 0


def _unit_tests() -> list[tuple[str, dict]]:
    models = Path(__file__).parents[1] / "dbt_project" / "models"
    return [(f"{path.relative_to(models)}: {test['name']}", test)
            for path in sorted(models.glob("**/_*.yml"))
            for test in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(
                "unit_tests", [])]


def test_every_dbt_unit_test_pins_its_zone_and_that_zones_span():
    """A deployment passes its own zone and span; a unit test's given local times assume
    one zone, so each pins it, with the span `servicepulse` would pass for it (DuckDB
    then takes the arithmetic path a build takes) or null (ICU only)."""
    unit_tests = _unit_tests()
    assert len(unit_tests) >= 9
    for where, test in unit_tests:
        pinned = (test.get("overrides") or {}).get("vars") or {}
        assert "reporting_timezone" in pinned, f"{where} does not pin reporting_timezone"
        ZoneInfo(pinned["reporting_timezone"])
        assert "reporting_utc_offset_span" in pinned, (
            f"{where} does not pin reporting_utc_offset_span (null or its zone's span)")
        # Which KPIs the configured sources cannot measure blanks their values.
        assert pinned.get("kpis_not_measured") == {}, f"{where} does not pin kpis_not_measured"
        span = pinned["reporting_utc_offset_span"]
        if span is not None:
            assert span == reporting_utc_offset_span(pinned["reporting_timezone"], AROUND), where
