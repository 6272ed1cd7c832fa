"""The KPI aggregate's period finder (dbt_project/macros/kpi_period_finder.sql) on its
own: given the aggregate as a build left it, which days would the next build recompute?

The known-answer set's data are as of 2026-11-23 08:00 local (T6's update), so a build
with nothing new recomputes that day's week and month. Ticket T10 was created on Tuesday
29 September and delivered on Friday 9 October; a new version of it reaches back to its
start and forward to its longest deadline (five working days after the 9th, counting
China's National Day week off and the worked Saturday 10 October: Thursday 15 October),
and then to the whole weeks and months around those days."""

from __future__ import annotations

import json
import re
from datetime import date

import duckdb
import pytest

from servicepulse.transform import run_dbt

AGGREGATE = "int_kpi_observations_aggregated_to_periods"


def _ranges(settings, previous_build: bool) -> list[tuple[date, date]]:
    relation = (f"api.Relation.create(schema='{settings.warehouse.schema('intermediate')}', "
                f"identifier='{AGGREGATE}')" if previous_build else "none")
    inline = ("{{ kpi_recomputed_day_ranges_query(kpi_horizon_working_days(), "
              f"{relation}) }}}}")
    result = run_dbt(settings, "show", "--inline", inline, "--output", "json", "--limit",
                     "10000", "--quiet")
    rows = json.loads(re.search(r"\{.*\}", result.output, re.DOTALL).group(0))["show"]
    return [(date.fromisoformat(str(row["first_day"])[:10]),
             date.fromisoformat(str(row["last_day"])[:10])) for row in rows]


@pytest.fixture(scope="module")
def built(tmp_path_factory, copy_of_known_answers):
    return copy_of_known_answers(tmp_path_factory.mktemp("finder"))


def test_nothing_new_recomputes_the_as_of_week_and_month(built):
    # November (the as-of day's month) holds its weeks 47 and 48 (16-29 November).
    assert _ranges(built, previous_build=True) == [(date(2026, 11, 1), date(2026, 11, 30))]


def test_a_new_version_reaches_its_start_and_its_longest_deadline(built, tmp_path):
    with duckdb.connect(str(built.duckdb_path)) as warehouse:
        warehouse.execute(
            "insert into raw.crm_tickets select * replace (now() as _loaded_at) "
            "from raw.crm_tickets where ticket_id = 'T10' "
            "qualify row_number() over (order by _loaded_at desc) = 1")
    # September and October around T10's days (29 Sep - 15 Oct), and November as before.
    assert _ranges(built, previous_build=True) == [(date(2026, 9, 1), date(2026, 11, 30))]


def test_a_full_build_covers_every_fact_and_deadline(built):
    ranges = _ranges(built, previous_build=False)
    with duckdb.connect(str(built.duckdb_path), read_only=True) as warehouse:
        fact_days = [day for (day,) in warehouse.execute(
            "select distinct cast(created_at_local as date) from marts.fct_tickets union "
            "select distinct cast(received_at_local as date) from marts.fct_complaints"
        ).fetchall()]
    assert len(ranges) == 1
    first, last = ranges[0]
    assert all(first <= day <= last for day in fact_days)
    assert first == date(2026, 9, 1)          # T10's month: its first fact
    assert last >= date(2026, 11, 30)         # past the as-of day's month
