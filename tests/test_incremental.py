"""Incremental facts and KPI aggregates: nightly runs day by day give exactly what one
full refresh of the same raw data gives, including late and corrected rows (ticket,
complaint, survey, audit, customer) and a re-run day, while a nightly build recomputes
only the periods the new data touches."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from servicepulse import build_inputs
from servicepulse.constants import SOURCES
from servicepulse.demo.generate import GenerationSpec, generate
from servicepulse.kpis import KPI_TABLES
from servicepulse.load import load_source
from servicepulse.transform import TransformError, build, run_dbt
from servicepulse.warehouse import connected
from tests.conftest import made_once, settings_for
from tests.kpi_harness import all_kpi_rows

# Its tests are long and independent: under pytest-xdist they go to every worker (the
# module's fixtures are made once a run, conftest.made_once, and only read or copied).
pytestmark = pytest.mark.spread_over_workers

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Ten weeks up to and over China's National Day holidays and adjusted Saturday: long
# enough that a night's changes leave whole weeks and a month untouched.
START = date(2026, 8, 3)
DAYS = 71
BACKFILL_UNTIL = START + timedelta(days=DAYS - 4)
NIGHTLY = [BACKFILL_UNTIL + timedelta(days=n) for n in range(3)]
TABLES = {"fct_tickets": "ticket_id", "fct_complaints": "complaint_id",
          "fct_survey_responses": "response_id",
          "kpi_daily": "period_start, dimension, dimension_value, kpi_id",
          "kpi_weekly": "period_start, dimension, dimension_value, kpi_id",
          "kpi_monthly": "period_start, dimension, dimension_value, kpi_id"}


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


def _load(settings, day: date) -> None:
    """What the nightly DAG does for `day`: every source's partition of that day (the
    first load backfills everything before)."""
    with connected(settings) as warehouse:
        for source in SOURCES:
            load_source(settings, warehouse, source, _midnight(day), _midnight(day + timedelta(1)))


def _table(settings, table: str, order: str) -> pd.DataFrame:
    schema = settings.warehouse.schema("marts")
    with connected(settings, read_only=True) as warehouse:
        frame = warehouse.fetch_frame(f'select * from "{schema}"."{table}" order by {order}')
    # When a version reached the warehouse differs between the two warehouses, and so
    # do when a row was last written and the newest load a KPI row was written with.
    return frame.drop(columns=["loaded_at", "built_at", "inputs_loaded_through"],
                      errors="ignore").reset_index(drop=True)


def _written_with(settings, table: str) -> pd.DataFrame:
    """Each period of a KPI table with the newest load its rows were written with."""
    schema = settings.warehouse.schema("marts")
    with connected(settings) as warehouse:
        return warehouse.fetch_frame(
            f'select period_start, max(inputs_loaded_through) as inputs_loaded_through '
            f'from "{schema}"."{table}" group by period_start order by period_start')


def _facts_behind_staging(settings) -> dict[str, int]:
    """Per fact, how many staging rows (key and load time) it does not hold."""
    staging, marts = settings.warehouse.schema("staging"), settings.warehouse.schema("marts")
    stages = {"fct_tickets": "stg_crm__tickets", "fct_complaints": "stg_complaints__complaints",
              "fct_survey_responses": "stg_surveys__survey_responses"}
    behind = {}
    with connected(settings) as warehouse:
        for fact, stage in stages.items():
            key = TABLES[fact]
            missing = int(warehouse.fetch_frame(
                f'select count(*) as n from (select {key}, loaded_at from "{staging}".{stage} '
                f'except select {key}, loaded_at from "{marts}".{fact}) as behind')["n"].iloc[0])
            if missing:
                behind[fact] = missing
    return behind


def _aggregates(settings) -> pd.DataFrame:
    schema = settings.warehouse.schema("intermediate")
    with connected(settings) as warehouse:
        return warehouse.fetch_frame(
            "select period_grain, period_start, inputs_loaded_through from "
            f'"{schema}".int_kpi_observations_aggregated_to_periods')


def _months(aggregates: pd.DataFrame) -> set[str]:
    return set(aggregates.loc[aggregates["period_grain"] == "month", "period_start"].astype(str))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return made_once(tmp_path_factory, "incremental-sources", _write_sources)


def _write_sources(made: Path) -> tuple[Path, list[str]]:
    """Generated deliveries plus, on the nightly days, new versions of rows the backfill
    already loaded: a corrected ticket, a reopened ticket, a customer who changed type."""
    folder = made / "sources"
    generate(GenerationSpec(out=folder, start=START, days=DAYS, seed=11, tickets_per_day=40))
    tickets = pd.read_csv(folder / "crm_tickets.csv", dtype=str, keep_default_na=False)
    customers = pd.read_csv(folder / "crm_customers.csv", dtype=str, keep_default_na=False)
    early = tickets[(tickets["resolved_at"] != "") & (tickets["updated_at"] < "2026-08-20")]
    corrected, reopened = early.iloc[[0]].copy(), early.iloc[[1]].copy()
    corrected["contacts_to_resolve"] = "3"
    corrected["updated_at"] = f"{NIGHTLY[0]}T10:00:00+08:00"
    reopened[["resolved_at", "closed_at", "contacts_to_resolve", "handle_seconds"]] = ""
    reopened["status"] = "open"
    reopened["updated_at"] = f"{NIGHTLY[1]}T09:00:00+08:00"
    moved = customers[customers["customer_id"] == early.iloc[2]["customer_id"]].copy()
    moved["customer_type"] = "government" if moved.iloc[0]["customer_type"] != "government" \
        else "enterprise"
    moved["updated_at"] = f"{NIGHTLY[2]}T11:00:00+08:00"
    pd.concat([tickets, corrected, reopened]).to_csv(folder / "crm_tickets.csv", index=False)
    pd.concat([customers, moved]).to_csv(folder / "crm_customers.csv", index=False)

    # August's facts corrected in October: a complaint whose callback is withdrawn, a
    # survey answer corrected from satisfied to dissatisfied, an audit re-scored.
    complaints = pd.read_csv(folder / "complaints.csv", dtype=str, keep_default_na=False)
    called_back = complaints[(complaints["callback_at"] != "")
                             & (complaints["updated_at"] < "2026-08-20")].iloc[[0]].copy()
    called_back["callback_at"] = ""
    called_back["updated_at"] = f"{NIGHTLY[0]}T12:00:00+08:00"
    pd.concat([complaints, called_back]).to_csv(folder / "complaints.csv", index=False)
    surveys = pd.read_csv(folder / "surveys.csv", dtype=str, keep_default_na=False)
    satisfied = surveys[(surveys["satisfaction"] == "5")
                        & (surveys["updated_at"] < "2026-08-20")].iloc[[0]].copy()
    satisfied["satisfaction"] = "1"
    satisfied["updated_at"] = f"{NIGHTLY[1]}T12:00:00+08:00"
    pd.concat([surveys, satisfied]).to_csv(folder / "surveys.csv", index=False)
    audits = pd.read_csv(folder / "audits.csv", dtype=str, keep_default_na=False)
    rescored = audits[audits["updated_at"] < "2026-08-20"].iloc[[0]].copy()
    rescored["score_1"] = "0"
    rescored["updated_at"] = f"{NIGHTLY[2]}T12:00:00+08:00"
    pd.concat([audits, rescored]).to_csv(folder / "audits.csv", index=False)
    return folder, [early.iloc[i]["ticket_id"] for i in range(3)]


@pytest.fixture(scope="module")
def full(tmp_path_factory, sources):
    """One backfill of every delivery up to the last nightly day, one full refresh."""
    def make(folder: Path):
        settings = settings_for(folder, sources[0])
        _load(settings, NIGHTLY[-1])
        build(settings, full_refresh=True)
        return settings

    return made_once(tmp_path_factory, "incremental-full", make)


def test_nightly_incremental_runs_equal_one_full_refresh(tmp_path, sources, full):
    sources, (corrected, reopened, customer_moved) = sources
    nightly = settings_for(tmp_path / "nightly", sources)
    _load(nightly, BACKFILL_UNTIL - timedelta(days=1))
    build(nightly)
    facts_before = _table(nightly, "fct_tickets", "ticket_id")
    for day in NIGHTLY:
        _load(nightly, day)
        if day == NIGHTLY[0]:
            # Staging built on its own first: the facts' next build must still take
            # what it wrote, though their sources loaded nothing since.
            run_dbt(nightly, "build", "--select", "staging")
        build(nightly)
        assert _facts_behind_staging(nightly) == {}, day
    _load(nightly, NIGHTLY[1])  # a re-run of an earlier day changes nothing
    build(nightly)
    # An August ticket delivered again, as a source re-sending a row does: the next
    # build recomputes August (the ticket's periods) and October (the as-of moment's),
    # and keeps September.
    tickets = f'"{nightly.warehouse.schema("raw")}".crm_tickets'
    with connected(nightly) as warehouse:
        warehouse.execute(f"update {tickets} set _loaded_at = now() where ticket_id = '{corrected}'")
    build(nightly)

    # The nightly runs brought new tickets and new versions of loaded ones.
    after = _table(nightly, "fct_tickets", "ticket_id").set_index("ticket_id")
    before = facts_before.set_index("ticket_id")
    assert len(after) > len(before)
    assert before.loc[corrected, "contacts_to_resolve"] != 3
    assert after.loc[corrected, "contacts_to_resolve"] == 3
    assert before.loc[reopened, "is_resolved"] and not after.loc[reopened, "is_resolved"]
    assert before.loc[customer_moved, "customer_type"] != after.loc[customer_moved,
                                                                    "customer_type"]

    # Cost follows what changed.
    aggregates = _aggregates(nightly)
    newest = aggregates["inputs_loaded_through"].max()
    rebuilt = aggregates[aggregates["inputs_loaded_through"] == newest]
    kept = aggregates[aggregates["inputs_loaded_through"] < newest]
    assert _months(rebuilt) == {"2026-08-01", "2026-10-01"}
    assert _months(kept) == {"2026-09-01"}
    # The KPI tables rewrite the periods the aggregate rebuilt and the ones after them
    # (their previous_value); the others keep the rows of an earlier night.
    for table, grain, step in (("kpi_weekly", "week", pd.Timedelta(days=7)),
                               ("kpi_daily", "day", pd.Timedelta(days=1))):
        rebuilt_periods = set(pd.to_datetime(
            rebuilt.loc[rebuilt["period_grain"] == grain, "period_start"]))
        written = _written_with(nightly, table)
        periods = pd.to_datetime(written["period_start"])
        rewritten = set(periods[written["inputs_loaded_through"] == newest])
        expected = (rebuilt_periods | {period + step for period in rebuilt_periods})
        assert rewritten == expected & set(periods), table
        assert len(rewritten) < len(periods), table

    for table, key in TABLES.items():
        incremental, refreshed = _table(nightly, table, key), _table(full, table, key)
        assert len(incremental) == len(refreshed) > 0, table
        pd.testing.assert_frame_equal(incremental, refreshed, check_exact=False, rtol=1e-9,
                                      obj=table)


@pytest.mark.parametrize("yardstick", ["departments", "every_dimension"])
def test_marts_agree_with_an_independent_hand_written_query(full, yardstick):
    """The weekly KPIs of the marts equal those of the bench's hand-written queries
    (bench_sql/), each one DuckDB query written from the catalogue straight against the
    raw tables (no dbt model, macro or fact is shared), for every complete week:
    organisation and departments, and every dimension of the catalogue. The last week
    is left out: there the marts wait for deadlines that have not passed yet, and the
    plain query counts them as missed."""
    from servicepulse.demo.benchmarks import HAND_WRITTEN_QUERIES

    schema = full.warehouse.schema("marts")
    with connected(full, read_only=True) as warehouse:  # the workers share it
        by_hand = warehouse.fetch_frame(HAND_WRITTEN_QUERIES[yardstick].read_text())
        marts = warehouse.fetch_frame(
            f'select period_start, kpi_id, dimension, dimension_value as slice, value from "{schema}".'
            "kpi_weekly")
    if "dimension" not in by_hand:
        by_hand["dimension"] = "department"
        by_hand.loc[by_hand["slice"] == "all", "dimension"] = "organisation"
    last_week = marts["period_start"].max()
    by_hand["value"] = by_hand["value"].where(by_hand["kpi_id"] != "FRT",
                                              by_hand["median_measure"])
    by_hand.loc[by_hand["kpi_id"] == "NPS", "value"] *= 100
    by_hand = by_hand[by_hand["period_start"] < last_week]
    merged = by_hand.merge(marts, on=["period_start", "kpi_id", "dimension", "slice"],
                           how="left", suffixes=("_by_hand", "_mart"))
    assert set(merged["kpi_id"]) == {"RESP_SLA", "FRT", "FCR", "AHT", "CMP_RATE", "CSAT",
                                     "CSI", "NPS", "CMP_SOLUTION_24H", "STEP_CLASSIFY_30M"}
    expected_dimensions = ({"organisation", "department"} if yardstick == "departments" else
                           {"organisation", "department", "agent", "channel", "service_type",
                            "customer_type", "service_level", "region", "complaint_category",
                            "priority"})
    assert set(merged["dimension"]) == expected_dimensions
    assert len(merged) > 100 * len(expected_dimensions)
    pd.testing.assert_series_equal(merged["value_by_hand"].astype(float),
                                   merged["value_mart"].astype(float), check_names=False,
                                   rtol=1e-9)


# One new version at a time, each moving or changing what an August fact contributes
# (so the old version's periods and the new one's must both be rebuilt), as SQL over
# the raw table: (table, key, the row to change, its changed columns and their values).
CHANGES = {
    "survey answered a month later, and dissatisfied": (
        "survey_responses", "response_id",
        "satisfaction = 5 and answered_at < timestamptz '2026-08-20 00:00:00+08'",
        {"answered_at": "answered_at + interval 30 day", "satisfaction": "1"}),
    # SURVEY_RESPONSE counts a survey in the period it was sent: an answer arriving a
    # month later changes August's rate, not only the period it is answered in.
    "survey sent in August and never answered, answered a month later": (
        "survey_responses", "response_id",
        "answered_at is null and sent_at < timestamptz '2026-08-20 00:00:00+08'",
        {"answered_at": "sent_at + interval 30 day", "satisfaction": "4",
         "attitude_score": "5", "speed_score": "5", "professionalism_score": "4"}),
    "complaint's callback withdrawn": (
        "complaints", "complaint_id",
        "callback_at < timestamptz '2026-08-20 00:00:00+08'", {"callback_at": "null"}),
    "ticket resolved three weeks later": (
        "crm_tickets", "ticket_id",
        "resolved_at < timestamptz '2026-08-20 00:00:00+08'",
        {"resolved_at": "resolved_at + interval 21 day", "contacts_to_resolve": "2"}),
    # The percentiles are a model of their own (int_kpi_measures_aggregated_to_periods):
    # the agent's day loses its only response time, so its FRT median must become null,
    # not keep the earlier build's value.
    "an agent's only first response of a day withdrawn": (
        "crm_tickets", "ticket_id",
        ("first_response_at is not null and ticket_id in (select min(ticket_id) "
         "from raw.crm_tickets where first_response_at is not null "
         "group by agent_id, cast(timezone('Asia/Shanghai', created_at) as date) "
         "having count(distinct ticket_id) = 1)"),
        {"first_response_at": "null"}),
    "customer changed type": (
        "crm_customers", "customer_id",
        ("customer_id in (select customer_id from raw.crm_tickets "
         "where created_at < timestamptz '2026-08-20 00:00:00+08')"),
        {"customer_type": "case when customer_type = 'government' then 'enterprise' "
                          "else 'government' end"}),
    "complaint re-dated to the day before the holidays, not resolved": (
        "complaints", "complaint_id", "resolved_at is not null",
        {"received_at": "timestamptz '2026-09-30 10:00:00+08'",
         "classified_at": "timestamptz '2026-09-30 10:10:00+08'",
         "dispatched_at": "timestamptz '2026-09-30 10:40:00+08'",
         "solution_at": "timestamptz '2026-09-30 15:00:00+08'",
         "resolved_at": "null", "callback_at": "null"}),
    # Its 5 working days end on Tuesday 13 October: when the data's as-of moment passes
    # that day, the close step is missed, a decision anchored in September, which
    # nothing else that night touches.
    "the data's as-of moment three days on": (
        "crm_tickets", "ticket_id",
        "updated_at = (select max(updated_at) from raw.crm_tickets)",
        {"updated_at": "(select max(updated_at) from (select updated_at from raw.crm_tickets "
                       "union all select updated_at from raw.complaints)) + interval 3 day"}),
    "audit re-dated and re-scored": (
        "audits", "audit_id", "audited_at < timestamptz '2026-08-20 00:00:00+08'",
        {"audited_at": "audited_at + interval 30 day", "score_1": "0"}),
}


@pytest.fixture(scope="module")
def nightly_built(tmp_path_factory, sources):
    """Every delivery up to the last nightly day, loaded and built (incrementally)."""
    def make(folder: Path):
        nightly = settings_for(folder, sources[0])
        _load(nightly, NIGHTLY[-1])
        build(nightly)
        return nightly

    return made_once(tmp_path_factory, "incremental-nightly-built", make)


def _copy(built, folder, sources):
    """Settings of a copy of the built warehouse in ``folder``."""
    copy = settings_for(folder, sources)
    copy.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(built.duckdb_path, copy.duckdb_path)
    return copy


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_kind_of_change_rebuilds_exactly_what_a_full_refresh_gives(
        tmp_path, sources, nightly_built, change):
    """Every kind of source change, alone in a nightly build, leaves the KPI marts equal
    to a full refresh of the same raw data: the build finds the periods the fact's old
    and new versions touch (tickets, complaints, surveys, audits, and a customer's
    facts), and the periods it keeps are right."""
    sources, _ = sources
    nightly = _copy(nightly_built, tmp_path / "nightly", sources)
    _change_one_row(nightly, change)
    build(nightly)
    _assert_equals_a_full_refresh(nightly, tmp_path / "refreshed", sources, change)


def _change_one_row(settings, change: str) -> None:
    """A new version of one raw row, as CHANGES[change] describes: the changed columns, a
    newer version stamp, loaded now."""
    table, key, which, new_values = CHANGES[change]
    raw = settings.warehouse.schema("raw")
    replaced = {"updated_at": "updated_at + interval 1 second", **new_values,
                "_loaded_at": "now()"}
    with connected(settings) as warehouse:
        changed = warehouse.fetch_frame(
            f'select min({key}) as k from "{raw}".{table} where {which}')["k"][0]
        assert changed is not None, f"no row to change for: {change}"
        warehouse.execute(
            f'insert into "{raw}".{table} select * replace ('
            + ", ".join(f"{expression} as {column}" for column, expression in replaced.items())
            + f') from "{raw}".{table} where {key} = ? '
            "order by updated_at desc, _loaded_at desc limit 1", [changed])


def _assert_equals_a_full_refresh(nightly, folder, sources, what: str) -> None:
    """The yardstick: the same raw data with every model rebuilt whole (its tests are the
    nightly build's to pass, not the yardstick's)."""
    refreshed = _copy(nightly, folder, sources)
    run_dbt(refreshed, "run", "--full-refresh")
    for table_name, order in TABLES.items():
        pd.testing.assert_frame_equal(_table(nightly, table_name, order),
                                      _table(refreshed, table_name, order),
                                      check_exact=False, rtol=1e-9,
                                      obj=f"{table_name} after: {what}")


def test_a_build_whose_percentiles_failed_is_made_whole_by_the_next(tmp_path, sources,
                                                                     nightly_built):
    """The sums and the percentiles are two models built side by side. A night where the
    percentiles fail and the sums succeed leaves the KPI tables unbuilt; the next build,
    with nothing new, recomputes the percentiles of the periods that night changed (from
    their own stale rows) and the KPI tables rewrite them: it equals a full refresh."""
    sources, _ = sources
    nightly = _copy(nightly_built, tmp_path / "nightly", sources)
    change = "an agent's only first response of a day withdrawn"
    _change_one_row(nightly, change)
    measures = f'"{nightly.warehouse.schema("intermediate")}".int_kpi_measures_aggregated_to_periods'
    with connected(nightly) as warehouse:  # on_schema_change: fail
        warehouse.execute(f"alter table {measures} add column in_the_way integer")
    with pytest.raises(TransformError, match="int_kpi_measures_aggregated_to_periods"):
        build(nightly)
    statuses = {result["unique_id"].rsplit(".", 1)[-1]: result["status"] for result in
                json.loads((nightly.output_path / "dbt" / "duckdb-target"
                            / "run_results.json").read_text())["results"]}
    assert statuses["int_kpi_measures_aggregated_to_periods"] == "error"
    assert statuses["int_kpi_observations_aggregated_to_periods"] == "success"
    assert statuses["kpi_weekly"] == "skipped"
    with connected(nightly) as warehouse:
        warehouse.execute(f"alter table {measures} drop column in_the_way")
    build(nightly)
    _assert_equals_a_full_refresh(nightly, tmp_path / "refreshed", sources,
                                  f"{change}, the percentiles failing the first night")


def test_kpi_tables_rewrite_what_an_earlier_build_left_stale(tmp_path, sources, full):
    """A KPI table rewrites every period when its rows were written under other rules
    (another target, as after an edit of kpi_definitions: the rules fingerprint differs)
    or when its slices differ from the aggregate's (an agent's rows missing), and drops a
    period outside the span; a build with no new data then equals a full refresh."""
    sources, _ = sources
    nightly = settings_for(tmp_path / "nightly", sources)
    _load(nightly, NIGHTLY[-1])
    build(nightly)
    marts = nightly.warehouse.schema("marts")
    with connected(nightly) as warehouse:
        warehouse.execute(f'update "{marts}".kpi_weekly set target = 0, '
                          "rules_fingerprint = 'the rules of an earlier release'")
        warehouse.execute(f'delete from "{marts}".kpi_monthly where dimension = \'agent\' '
                          f'and dimension_value = (select min(dimension_value) from "{marts}"'
                          ".kpi_monthly where dimension = 'agent')")
        warehouse.execute(f'insert into "{marts}".kpi_daily select * replace ('
                          "period_start - interval 30 day as period_start) "
                          f'from "{marts}".kpi_daily where period_start = '
                          f'(select min(period_start) from "{marts}".kpi_daily)')
        # What left these rows (an earlier release, an edited seed) is an input of the
        # build too: the next build runs, however little data arrived since.
        build_inputs.forget(nightly, warehouse)
    build(nightly)
    for table, key in TABLES.items():
        pd.testing.assert_frame_equal(_table(nightly, table, key), _table(full, table, key),
                                      check_exact=False, rtol=1e-9, obj=table)


def test_a_warehouse_with_the_percentiles_in_the_aggregate_builds_on(tmp_path, sources, full):
    """A warehouse built before the percentiles had their own model keeps them as two
    columns of the aggregate: its next nightly build drops them (a pre-hook) instead of
    failing on the changed schema, and its KPI tables equal a full refresh."""
    sources, _ = sources
    upgraded = _copy(full, tmp_path / "upgraded", sources)
    intermediate = upgraded.warehouse.schema("intermediate")
    with connected(upgraded) as warehouse:
        for column in ("median_measure", "p90_measure"):
            warehouse.execute(f'alter table "{intermediate}".'
                              f"int_kpi_observations_aggregated_to_periods "
                              f"add column {column} double")
        build_inputs.forget(upgraded, warehouse)  # another release: the next build runs
    build(upgraded)
    with connected(upgraded) as warehouse:
        columns = warehouse.fetch_frame(
            "select column_name from information_schema.columns "
            f"where table_schema = '{intermediate}' "
            "and table_name = 'int_kpi_observations_aggregated_to_periods'")["column_name"]
    assert not {"median_measure", "p90_measure"} & set(columns)
    for table, key in TABLES.items():
        pd.testing.assert_frame_equal(_table(upgraded, table, key), _table(full, table, key),
                                      check_exact=False, rtol=1e-9, obj=table)


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory, sources):
    """A backfill up to the first nightly day, then the second night's build."""
    def make(folder: Path):
        nightly = settings_for(folder, sources[0])
        _load(nightly, NIGHTLY[0])
        build(nightly)
        _load(nightly, NIGHTLY[1])
        build(nightly)
        return nightly

    return made_once(tmp_path_factory, "incremental-two-nights", make)


# What a faulty nightly build could write: (SQL over the marts, the key test it fails).
_NEWEST = '(select max(built_at) from "{marts}".fct_tickets)'
_WRITTEN_KPI_ROWS = ('inputs_loaded_through = (select max(inputs_loaded_through) '
                     'from "{marts}".kpi_daily)')
TAMPERING = {
    "a ticket the build wrote, twice": (
        ('insert into "{marts}".fct_tickets select * from "{marts}".fct_tickets '
        f"where built_at = {_NEWEST} limit 1"),
        "unique_incremental_key_fct_tickets_ticket_id"),
    "a ticket the build wrote while the earlier build's row stayed": (
        (f'insert into "{{marts}}".fct_tickets select * replace ({_NEWEST} as built_at) '
        f'from "{{marts}}".fct_tickets where built_at < {_NEWEST} limit 1'),
        "unique_incremental_key_fct_tickets_ticket_id"),
    "a KPI row the build wrote, twice": (
        ('insert into "{marts}".kpi_daily select * from "{marts}".kpi_daily '
        f"where {_WRITTEN_KPI_ROWS} limit 1"),
        "unique_combination_of_columns_kpi_daily"),
}


def test_key_tests_pass_on_what_a_nightly_build_wrote(tmp_path, sources, two_nights):
    copy = _copy(two_nights, tmp_path, sources[0])
    assert run_dbt(copy, "test", "--select", "fct_tickets kpi_daily").returncode == 0


@pytest.mark.parametrize("case", list(TAMPERING))
def test_key_tests_of_a_nightly_build_catch_what_it_wrote_twice(tmp_path, sources,
                                                                two_nights, case):
    """The key tests of a nightly build check the rows that build wrote, against the
    whole table: a ticket written twice, a ticket written again while its earlier row
    stayed, a KPI row written twice each fail `dbt test`."""
    copy = _copy(two_nights, tmp_path, sources[0])
    statement, failing_test = TAMPERING[case]
    with connected(copy) as warehouse:
        warehouse.execute(statement.format(marts=copy.warehouse.schema("marts")))
    result = run_dbt(copy, "test", "--select", "fct_tickets kpi_daily", check=False)
    assert result.returncode != 0, case
    failed = [line for line in result.output.splitlines() if "FAIL" in line]
    assert any(failing_test in line for line in failed), (case, failed)


AGGREGATE = "int_kpi_observations_aggregated_to_periods"
SLICE_COLUMNS = "period_grain, dimension, dimension_value, kpi_id"


def _aggregate_indexes(settings) -> dict[str, str]:
    """The KPI aggregate's indexes on PostgreSQL: name -> indexed columns."""
    with connected(settings) as warehouse:
        frame = warehouse.fetch_frame(
            "select indexname, indexdef from pg_indexes "
            f"where schemaname = '{settings.warehouse.schema('intermediate')}' "
            f"and tablename = '{AGGREGATE}'")
    return {name: definition[definition.rindex("(") + 1:definition.rindex(")")]
            for name, definition in zip(frame["indexname"], frame["indexdef"])}


def _execute(settings, statement: str) -> None:
    with connected(settings) as warehouse:
        warehouse.execute(statement)


def _compiled_kpi_table(settings, grain: str) -> str:
    return next((settings.output_path / "dbt" / "postgres-target" / "compiled").rglob(
        f"{KPI_TABLES[grain]}.sql")).read_text()


def _fact_scans(settings, view: str, condition: str) -> list[str]:
    """The facts PostgreSQL would read whole for the rows of ``view`` meeting
    ``condition``, were a whole read the dearest plan it has (enable_seqscan off still
    scans a table it has no index to read by)."""
    schema = settings.warehouse.schema("intermediate")
    with connected(settings) as warehouse:
        warehouse.execute("set enable_seqscan = off")
        plan = warehouse.fetch_frame(
            f'explain (format json) select * from "{schema}".{view} where {condition}')
    scanned = []

    def walk(node: dict) -> None:
        if node["Node Type"] == "Seq Scan" and node["Relation Name"].startswith("fct_"):
            scanned.append(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    plan_json = plan.iloc[0, 0]
    walk((json.loads(plan_json) if isinstance(plan_json, str) else plan_json)[0]["Plan"])
    return scanned


@pytest.mark.postgres
def test_nightly_build_on_postgres_equals_a_full_refresh(tmp_path, sources, full,
                                                        postgres_prefix):
    """The incremental path (facts, the periods to recompute, the delete+insert of the
    KPI aggregate and of the KPI tables) is the same SQL on PostgreSQL: a backfill, then a night bringing a
    customer's new type and a re-scored audit from August, gives every KPI row of one
    full refresh on DuckDB.

    The KPI tables find their slices by walking an index of the aggregate, which its
    post-hook makes. A warehouse whose index has the name earlier versions gave it (cut
    at 63 characters) gets it once, under its new name; KPI tables built while the
    aggregate has no such index (built alone, before the aggregate) take the slices by
    DISTINCT and give the same rows.

    A night reads the facts of the days it recomputes by the facts' indexes on the
    moments observations and backlog items are anchored on, not the history whole."""
    sources, _ = sources
    postgres = settings_for(tmp_path, sources, **{"warehouse.kind": "postgres",
                                                 "warehouse.schema_prefix": postgres_prefix})
    _load(postgres, NIGHTLY[1])
    build(postgres)
    slice_index = next(name for name, columns in _aggregate_indexes(postgres).items()
                       if columns == SLICE_COLUMNS)
    cut_name = f"{AGGREGATE}__{SLICE_COLUMNS.replace(', ', '__')}"[:63]
    assert slice_index != cut_name and len(slice_index) <= 63
    _execute(postgres, f'alter index "{postgres.warehouse.schema("intermediate")}".'
                       f'"{slice_index}" rename to "{cut_name}"')

    _load(postgres, NIGHTLY[2])
    build(postgres)
    indexed = sorted(_aggregate_indexes(postgres).values())
    assert indexed.count(SLICE_COLUMNS) == 1 and len(indexed) == len(set(indexed)), indexed
    assert slice_index in _aggregate_indexes(postgres)
    expected = {}
    for grain in ("day", "week", "month"):
        expected[grain] = all_kpi_rows(full, grain)
        assert len(expected[grain]) > 0
        assert all_kpi_rows(postgres, grain) == expected[grain], grain
        assert "with recursive walk" in _compiled_kpi_table(postgres, grain)

    # A night reads the days it recomputes by the facts' indexes on the moments the
    # observations and the backlog are anchored on, not the history whole.
    for view, moment in [("int_kpi_observations_unioned", "observed_at_local"),
                         ("int_backlog_items_unioned", "opened_at_local"),
                         ("int_backlog_items_unioned", "closed_at_local")]:
        two_days = (f"{moment} >= timestamp '2026-08-10' "
                    f"and {moment} < timestamp '2026-08-12'")
        assert _fact_scans(postgres, view, two_days) == [], (view, moment)
    assert _fact_scans(postgres, "int_backlog_items_unioned",
                       "closed_at_local is null or closed_at_local > timestamp '2026-10-01'") == []

    _execute(postgres, f'drop index "{postgres.warehouse.schema("intermediate")}".'
                       f'"{slice_index}"')
    run_dbt(postgres, "run", "--full-refresh", "-s", "kpi_daily", "kpi_weekly", "kpi_monthly")
    for grain in ("day", "week", "month"):
        assert "with recursive walk" not in _compiled_kpi_table(postgres, grain)
        assert all_kpi_rows(postgres, grain) == expected[grain], grain
