"""Reads the marts and quality results a report needs. No KPI arithmetic here: every
figure is a mart column, and the pure builders (weekly.py, monthly.py) only select,
order, format and word them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from servicepulse.kpis import (
    Period,
    PeriodError,
    data_as_of_local,
    kpi_definitions,
    kpi_rows,
    kpi_table,
    plain_records,
)
from servicepulse.readiness import releasing_run
from servicepulse.reports.feedback_data import survey_comments
from servicepulse.reports.sections import (
    AGENT_KPIS,
    STEP_ORDER,
    QualitySnapshot,
    backlog_moment,
    trend_window,
)
from servicepulse.settings import Settings
from servicepulse.warehouse import Warehouse

_PRIORITY_TABLES = {"week": "kpi_complaint_priority_weekly",
                    "month": "kpi_complaint_priority_monthly"}
_ANCHOR_COLUMNS = {"week": "anchored_week_start", "month": "anchored_month_start"}


def report_inputs(settings: Settings, warehouse: Warehouse, period: Period,
                  department: str | None) -> dict[str, Any]:
    """The mart rows one report of ``period`` (an ISO week or a month) shows, for the
    organisation (``department`` None) or one department's slice."""
    if period.kind not in ("week", "month"):
        raise PeriodError(f"{period.label}: reports cover an ISO week or a month")
    first, last = trend_window(period)
    trend_rows = kpi_rows(settings, warehouse, period.kind, first, last, department)
    if not any(r["period_start"] == period.start for r in trend_rows):
        raise PeriodError(f"no KPI rows for {period.label}"
                          + (f" and department {department!r}" if department else "")
                          + f": the marts do not cover that {period.kind} "
                            "(run the pipeline first)")
    as_of = data_as_of(settings, warehouse)
    department_rows = _department_rows(settings, warehouse, period)
    agent_rows = _agent_rows(settings, warehouse, period, department)
    mark_few_cases(settings, warehouse, trend_rows + department_rows + agent_rows)
    return {
        "trend_rows": trend_rows,
        # A department's report names no other department; it reads them only for its
        # place in the ranking.
        "department_rows": department_rows,
        "agent_rows": agent_rows,
        "category_rows": _category_rows(settings, warehouse, period, department),
        "breaches": _breaches(settings, warehouse, period, department),
        "breach_limit": settings.reports.breach_list_limit,
        "top_n": settings.reports.top_n,
        "department_columns": settings.reports.department_columns,
        "quality": latest_quality(settings, warehouse, period),
        "data_as_of": as_of,
        "actions": corrective_actions(settings, warehouse, period, department),
        "oldest_open": oldest_open_items(settings, warehouse, period, department, as_of,
                                         settings.reports.top_n),
        "survey_comments": survey_comments(settings, warehouse, period, department,
                                           settings.reports.survey_comments),
    }


# The KPI kinds whose value rests on cases (a share, mean or percentile of surveys,
# tickets or complaints): their denominator is the number of cases. Counts have no
# sample, and a weighted KPI's denominator says only whether every component had a value.
PER_CASE_KINDS = ("ratio", "mean", "median", "p90", "nps")


def mark_few_cases(settings: Settings, warehouse: Warehouse,
                   rows: list[dict[str, Any]]) -> None:
    """Give each KPI row its ``sample_size`` (cases, for per-case kinds; else None) and
    ``few_cases`` (fewer than the KPI's minimum, reports.min_sample_by_kpi or
    reports.min_sample, but some): the builders show the n and do not rank such a
    figure."""
    definitions = kpi_definitions(settings, warehouse)
    minimum = settings.reports.min_sample_by_kpi
    for row in rows:
        kind = definitions.get(row["kpi_id"], {}).get("kind")
        cases = row.get("denominator") if kind in PER_CASE_KINDS else None
        row["sample_size"] = None if cases is None else int(cases)
        row["few_cases"] = (bool(cases) and row["value"] is not None
                            and cases < minimum.get(row["kpi_id"], settings.reports.min_sample))


def _department_rows(settings: Settings, warehouse: Warehouse, period: Period):
    """Every department's headline KPIs for the period, and its ticket volume (TICKETS,
    which orders the departments in long tables)."""
    return plain_records(warehouse.fetch_frame(
        f"select period_start, dimension_value, kpi_id, unit, direction, numerator, "
        f"denominator, value, target, status, previous_value, not_measured_reason "
        f"from {kpi_table(settings, period.kind)} "
        f"where dimension = 'department' "
        f"and (report_section = 'headline' or kpi_id = 'TICKETS') "
        f"and period_start = ? order by dimension_value, display_order", [period.start]))


def _agent_rows(settings: Settings, warehouse: Warehouse, period: Period,
                department: str | None):
    """The agents' KPIs for the period, with the department each agent works in now
    (dim_agents); a department's slice has only its agents."""
    marts = settings.warehouse.schema("marts")
    placeholders = ", ".join("?" for _ in AGENT_KPIS)
    return plain_records(warehouse.fetch_frame(
        f"select kpi.dimension_value as agent_id, agents.department, kpi.kpi_id, kpi.unit, "
        f"kpi.numerator, kpi.denominator, kpi.value, kpi.status, kpi.not_measured_reason "
        f"from {kpi_table(settings, period.kind)} as kpi "
        f'inner join "{marts}"."dim_agents" as agents '
        f"on kpi.dimension_value = agents.agent_id "
        f"where kpi.dimension = 'agent' and kpi.period_start = ? "
        f"and kpi.kpi_id in ({placeholders}) "
        f"and (? is null or agents.department = ?) "
        f"order by agents.department, kpi.dimension_value",
        [period.start, *AGENT_KPIS, department, department]))


def _category_rows(settings: Settings, warehouse: Warehouse, period: Period,
                   department: str | None):
    """The complaint priority matrix rows of the period and the one before (for the
    change in volume), for the report's slice."""
    marts = settings.warehouse.schema("marts")
    dimension, value = ("department", department) if department else ("organisation", "all")
    return plain_records(warehouse.fetch_frame(
        f"select period_start, complaint_category, complaints, high_impact_complaints, "
        f"frequency_share, impact_share, frequency_threshold, impact_threshold, "
        f"is_high_frequency, is_high_impact, priority_rank "
        f'from "{marts}"."{_PRIORITY_TABLES[period.kind]}" '
        f"where dimension = ? and dimension_value = ? and period_start in (?, ?) "
        f"order by period_start, priority_rank, complaints desc, complaint_category",
        [dimension, value, period.previous().start, period.start]))


def _breaches(settings: Settings, warehouse: Warehouse, period: Period,
              department: str | None):
    """Every complaint step that missed its deadline and counts in the period: the ones
    still not done first (someone can act on them), most overdue first."""
    marts = settings.warehouse.schema("marts")
    order = " ".join(f"when '{step}' then {i}" for i, step in enumerate(STEP_ORDER))
    return plain_records(warehouse.fetch_frame(
        f"select complaint_id, step, kpi_id, received_at_local, due_at_local, done_at_local, "
        f"is_still_undone, minutes_late, department, complaint_category, severity "
        f'from "{marts}"."fct_complaint_step_breaches" '
        f"where {_ANCHOR_COLUMNS[period.kind]} = ? and (? is null or department = ?) "
        f"order by is_still_undone desc, minutes_late desc nulls last, case step {order} end, "
        f"complaint_id",
        [period.start, department, department]))


def oldest_open_items(settings: Settings, warehouse: Warehouse, period: Period,
                      department: str | None, as_of: datetime,
                      limit: int) -> list[dict[str, Any]]:
    """The ``limit`` oldest tickets and complaints open at the report's backlog moment,
    with their department and the agent who holds them: the backlog by age says how
    many, this says which and whose. Open as BACKLOG counts it (int_backlog_items_unioned):
    opened before the moment and not left the backlog by it."""
    marts = settings.warehouse.schema("marts")
    moment = backlog_moment(period, as_of)
    branches = []
    parameters: list[Any] = []
    for kind, table, key, opened, category in (
            ("ticket", "fct_tickets", "ticket_id", "created_at_local", "null"),
            ("complaint", "fct_complaints", "complaint_id", "received_at_local",
             "complaint_category")):
        branches.append(
            f"select '{kind}' as item_kind, {key} as item_id, {opened} as opened_at_local, "
            f"department, agent_id, {category} as complaint_category "
            f'from "{marts}"."{table}" '
            f"where {opened} < ? and (left_backlog_at_local is null "
            f"or (left_backlog_at_local > ? and left_backlog_at_local > {opened})) "
            f"and (? is null or department = ?)")
        parameters += [moment, moment, department, department]
    rows = plain_records(warehouse.fetch_frame(
        f"select * from ({' union all '.join(branches)}) as items "
        f"order by opened_at_local, item_kind, item_id limit {int(limit)}", parameters))
    for row in rows:
        row["age_days"] = (moment - row["opened_at_local"]).total_seconds() / 86400
    return rows


def corrective_actions(settings: Settings, warehouse: Warehouse, period: Period,
                       department: str | None) -> dict[str, Any]:
    """The rectification loop in the report's slice: the actions (fct_corrective_actions;
    the builders choose which to list) and the period's closure KPIs for the slice and
    for every department (kpi_corrective_actions)."""
    marts = settings.warehouse.schema("marts")
    if not warehouse.table_exists(marts, "fct_corrective_actions"):
        return {"rows": [], "closure": []}
    rows = plain_records(warehouse.fetch_frame(
        f"select action_id, finding_kind, kpi_id, complaint_id, audit_id, step, department, "
        f"owner, problem, problem_zh, opened_on, due_on, status, cause_group, measure, done_on, "
        f"verified_on, first_done_on, last_reopened_on, reopened_count "
        f'from "{marts}"."fct_corrective_actions" '
        f"where (? is null or department = ?) order by due_on, action_id",
        [department, department]))
    closure = plain_records(warehouse.fetch_frame(
        f"select dimension, dimension_value, actions_due, actions_done_by_due, actions_done, "
        f"actions_verified, actions_still_open, closure_rate, verified_share "
        f'from "{marts}"."kpi_corrective_actions" '
        f"where period_grain = ? and period_start = ? order by dimension, dimension_value",
        [period.kind, period.start]))
    return {"rows": rows, "closure": closure}


def latest_quality(settings: Settings, warehouse: Warehouse,
                   period: Period) -> QualitySnapshot | None:
    """The checks of the run that released the period (readiness.releasing_run), so
    re-rendering a released period from the same data gives the same PDF."""
    run = releasing_run(settings, warehouse, period)
    if run is None:
        return None
    frame = warehouse.fetch_frame(
        f'select suite, check_name, severity, success '
        f'from "{settings.warehouse.schema("quality")}"."check_results" where run_id = ?',
        [run["run_id"]])
    if frame.empty:
        return None
    failed_warnings = frame[(~frame["success"].astype(bool)) & (frame["severity"] == "warning")]
    return QualitySnapshot(
        # The day before the interval's local end, by the calendar: 24 hours before a
        # midnight after a 23-hour day (spring forward) is the day before that.
        checked_through=run["interval_end"].date() - timedelta(days=1), total=len(frame),
        passed=int(frame["success"].astype(bool).sum()),
        warnings=sorted(f"{s}.{c}" for s, c in zip(failed_warnings["suite"],
                                                   failed_warnings["check_name"])))


def data_as_of(settings: Settings, warehouse: Warehouse) -> datetime:
    """How current the data is, in the reporting time zone: the marts' one definition
    (int_changes_summarised, the newest change in tickets and complaints), the moment
    that also decides which periods are complete and which outcomes are known."""
    local = data_as_of_local(settings, warehouse)
    if local is None:
        raise PeriodError("the warehouse has no ticket or complaint changes: nothing "
                          "says how current the data is (load and build first)")
    return local.replace(tzinfo=settings.tz, microsecond=0) if local.tzinfo is None \
        else local.astimezone(settings.tz).replace(microsecond=0)
