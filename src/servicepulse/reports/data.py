"""Reads the marts and quality results a report needs. No KPI arithmetic here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from servicepulse.kpis import Period, PeriodError, kpi_rows, kpi_table, plain_value
from servicepulse.readiness import releasing_run
from servicepulse.reports.weekly import QualitySnapshot, period_weeks
from servicepulse.settings import Settings
from servicepulse.warehouse import Warehouse


def weekly_inputs(settings: Settings, warehouse: Warehouse, period: Period,
                  department: str | None) -> dict[str, Any]:
    first, last = period_weeks(period)
    trend_rows = kpi_rows(settings, warehouse, "week", first, last, department)
    if not any(r["period_start"] == period.start for r in trend_rows):
        raise PeriodError(f"no KPI rows for {period.label}"
                          + (f" and department {department!r}" if department else "")
                          + ": the marts do not cover that week (run the pipeline first)")
    department_rows = [] if department else _department_rows(settings, warehouse, period)
    return {"trend_rows": trend_rows, "department_rows": department_rows,
            "quality": latest_quality(settings, warehouse, period),
            "data_as_of": data_as_of(settings, warehouse)}


def _department_rows(settings: Settings, warehouse: Warehouse, period: Period):
    frame = warehouse.fetch_frame(
        f"select dimension_value, kpi_id, unit, value, status from "
        f"{kpi_table(settings, 'week')} "
        f"where dimension = 'department' and report_section = 'headline' "
        f"and period_start = ?", [period.start])
    return [{k: plain_value(v) for k, v in r.items()}
            for r in frame.to_dict(orient="records")]


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
        checked_through=(run["interval_end"] - pd.Timedelta(days=1)).date(), total=len(frame),
        passed=int(frame["success"].astype(bool).sum()),
        warnings=sorted(f"{s}.{c}" for s, c in zip(failed_warnings["suite"],
                                                   failed_warnings["check_name"])))


def data_as_of(settings: Settings, warehouse: Warehouse) -> datetime:
    """The newest change the warehouse knows of, in the reporting time zone."""
    schema = settings.warehouse.schema("raw")
    newest = warehouse.fetch_frame(
        f'select max(updated_at) as newest from "{schema}"."crm_tickets"')["newest"].iloc[0]
    return pd.Timestamp(newest).tz_convert(settings.tz).to_pydatetime().replace(microsecond=0)
