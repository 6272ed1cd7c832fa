"""Read KPIs from the marts. Nothing here computes a KPI: the KPI marts (kpi_daily,
kpi_weekly, kpi_monthly) are the definition."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from servicepulse.errors import UserError
from servicepulse.settings import Settings
from servicepulse.warehouse import Warehouse

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class Period:
    kind: str          # "day", "week" or "month"
    start: date        # first day (inclusive)
    end: date          # last day (inclusive)
    label: str         # 2026-11-23, 2026-W47 or 2026-11

    @classmethod
    def parse(cls, text: str) -> Period:
        if _DAY.match(text):
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise PeriodError(f"{text!r} is not a calendar date") from None
            return cls("day", day, day, text)
        if match := _WEEK.match(text):
            year, week = int(match[1]), int(match[2])
            try:
                start = date.fromisocalendar(year, week, 1)
            except ValueError:
                raise PeriodError(f"{text!r}: ISO year {year} has no week {week}") from None
            return cls("week", start, start + timedelta(days=6), text)
        if match := _MONTH.match(text):
            year, month = int(match[1]), int(match[2])
            if not 1 <= month <= 12:
                raise PeriodError(f"{text!r}: month must be 01-12")
            start = date(year, month, 1)
            following = date(year + (month == 12), month % 12 + 1, 1)
            return cls("month", start, following - timedelta(days=1), text)
        raise PeriodError(f"{text!r}: expected a day like 2026-11-23, an ISO week like 2026-W47 "
                          "or a month like 2026-11")

    @classmethod
    def week_of(cls, day: date) -> Period:
        year, week, _ = day.isocalendar()
        return cls.parse(f"{year}-W{week:02d}")

    @classmethod
    def last_complete_week(cls, today: date) -> Period:
        return cls.week_of(today - timedelta(days=today.isoweekday()))

    @classmethod
    def last_complete_month(cls, today: date) -> Period:
        return cls.parse(f"{today:%Y-%m}").previous()

    @classmethod
    def last_complete(cls, kind: str, today: date) -> Period:
        """The last ISO week or month that ended before ``today``."""
        return cls.last_complete_week(today) if kind == "week" else cls.last_complete_month(today)

    def previous(self, count: int = 1) -> Period:
        if self.kind == "day":
            return Period.parse((self.start - timedelta(days=count)).isoformat())
        if self.kind == "week":
            return Period.week_of(self.start - timedelta(days=7 * count))
        month_index = self.start.year * 12 + self.start.month - 1 - count
        return Period.parse(f"{month_index // 12}-{month_index % 12 + 1:02d}")


def plain_value(value: Any) -> Any:
    """A database value as plain Python: NaN/NA become None, numpy scalars unwrapped,
    PostgreSQL numerics (Decimal) floats like DuckDB's doubles."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
    return value


def plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A query's rows as plain Python from either warehouse: plain_value, NaT as None,
    period_start a calendar date (DuckDB returns a date as a midnight timestamp),
    other timestamps datetimes."""
    records = []
    for record in frame.to_dict(orient="records"):
        record = {k: plain_value(v) for k, v in record.items()}
        for key, value in record.items():
            if value is pd.NaT:
                record[key] = None
            elif isinstance(value, datetime):  # pandas Timestamp or plain datetime
                record[key] = value.date() if key == "period_start" else (
                    value.to_pydatetime() if isinstance(value, pd.Timestamp) else value)
        records.append(record)
    return records


KPI_TABLES = {"day": "kpi_daily", "week": "kpi_weekly", "month": "kpi_monthly"}
ORGANISATION = ("organisation", "all")


def kpi_table(settings: Settings, grain: str) -> str:
    return f'"{settings.warehouse.schema("marts")}"."{KPI_TABLES[grain]}"'


def kpi_definitions(settings: Settings, warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    """KPI id -> its definition as the warehouse holds it (the dbt seed)."""
    table = f'"{settings.warehouse.schema("reference")}"."kpi_definitions"'
    frame = warehouse.fetch_frame(f"select kpi_id, name_zh, name_en, kind, unit, direction, "
                                  f"target from {table}")
    return {row["kpi_id"]: row for row in frame.to_dict("records")}


def kpi_rows(settings: Settings, warehouse: Warehouse, grain: str, first: date, last: date,
             department: str | None = None) -> list[dict[str, Any]]:
    """KPI rows of periods starting in [first, last] for the organisation or one
    department, oldest period first."""
    dimension, value = ("department", department) if department else ORGANISATION
    return slice_rows(settings, warehouse, grain, first, last, dimension, value)


def slice_rows(settings: Settings, warehouse: Warehouse, grain: str, first: date, last: date,
               dimension: str, value: str | None = None) -> list[dict[str, Any]]:
    """KPI rows of periods starting in [first, last] for one dimension (every value of
    it, or only ``value``), ordered by period, value and display order."""
    frame = warehouse.fetch_frame(
        f"select period_start, dimension_value, kpi_id, display_order, name_zh, name_en, unit, "
        f"direction, report_section, numerator, denominator, value, target, status, "
        f"previous_value, not_measured_reason from {kpi_table(settings, grain)} "
        f"where dimension = ? and (? is null or dimension_value = ?) "
        f"and period_start between ? and ? "
        f"order by period_start, dimension_value, display_order",
        [dimension, value, value, first, last])
    return plain_records(frame)


def dimensions(settings: Settings, warehouse: Warehouse, grain: str) -> list[str]:
    """The dimensions the KPI mart of ``grain`` is cut by (besides the organisation)."""
    frame = warehouse.fetch_frame(
        f"select distinct dimension from {kpi_table(settings, grain)} "
        f"where dimension <> 'organisation' order by 1")
    return list(frame["dimension"])


def departments(settings: Settings, warehouse: Warehouse) -> list[str]:
    table = f'"{settings.warehouse.schema("marts")}"."dim_departments"'
    return list(warehouse.fetch_frame(f"select department from {table} order by 1")["department"])


def _kpi_entry(row: dict[str, Any]) -> dict[str, Any]:
    entry = {
        "value": row["value"],
        "numerator": row["numerator"],
        "denominator": row["denominator"],
        "target": row["target"],
        "status": row["status"],
        "previous": row["previous_value"],
        "unit": row["unit"],
    }
    if row.get("not_measured_reason"):
        # The sources cannot deliver what it needs: no value, and why (never 0 %).
        entry.update(status="not_measured", reason=row["not_measured_reason"])
    return entry


def _kpi_entries(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["kpi_id"]: _kpi_entry(row) for row in rows}


def data_as_of_local(settings: Settings, warehouse: Warehouse) -> datetime | None:
    """The data's "now" as the marts know it (int_changes_summarised: the newest change
    in tickets and complaints), as local wall time in the reporting time zone."""
    table = f'"{settings.warehouse.schema("intermediate")}"."int_changes_summarised"'
    frame = warehouse.fetch_frame(f"select data_as_of_local from {table}")
    value = plain_value(frame["data_as_of_local"].iloc[0]) if len(frame) else None
    if value is None or value is pd.NaT:
        return None
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def completeness(period: Period, as_of_local: datetime | None) -> dict[str, Any]:
    """Whether the data reach past the period's end: a period that ends after the data's
    as-of moment is still incomplete, and says so wherever it is shown."""
    complete = as_of_local is not None and as_of_local.date() > period.end
    return {"complete": complete,
            "data_as_of": as_of_local.isoformat(sep=" ") if as_of_local else None}


def kpi_document(settings: Settings, warehouse: Warehouse, period: Period,
                 department: str | None = None, by: str | None = None) -> dict[str, Any]:
    """The KPIs of one period in the stable JSON shape of `servicepulse kpis`: for the
    organisation or one department ("kpis"), or for every value of a dimension
    ("by" and "slices": value -> KPIs)."""
    if not warehouse.table_exists(settings.warehouse.schema("marts"), KPI_TABLES[period.kind]):
        raise PeriodError("the warehouse has no KPI marts yet: run `servicepulse build` "
                          "(or `servicepulse run --date …`) first")
    if department and by:
        raise PeriodError("--by cannot be combined with --department: the KPI marts cut "
                          "by one dimension at a time")
    if department and department not in departments(settings, warehouse):
        raise PeriodError(f"unknown department {department!r}; known: "
                          + ", ".join(departments(settings, warehouse)))
    if by:
        known = dimensions(settings, warehouse, period.kind)
        if by not in known:
            raise PeriodError(f"unknown dimension {by!r}; known: {', '.join(known)}")
        rows = slice_rows(settings, warehouse, period.kind, period.start, period.start, by)
    else:
        rows = kpi_rows(settings, warehouse, period.kind, period.start, period.start,
                        department)
    if not rows:
        raise PeriodError(f"no KPI rows for {period.label}: the marts cover other periods")
    document: dict[str, Any] = {"period": period.label, "department": department,
                                **completeness(period, data_as_of_local(settings, warehouse))}
    if by:
        slices: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            slices.setdefault(row["dimension_value"], []).append(row)
        document["by"] = by
        document["slices"] = {value: _kpi_entries(group) for value, group in slices.items()}
    else:
        document["kpis"] = _kpi_entries(rows)
    return document
