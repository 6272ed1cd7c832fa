"""The weekly operations report's data: a pure function of mart rows.

Nothing here queries a database or computes a KPI; it selects, orders, formats and
words what kpi_weekly already says, so the same rows always give the same report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from servicepulse.kpis import Period
from servicepulse.reports.charts import trend_svg
from servicepulse.reports.i18n import Messages

TREND_WEEKS = 12


@dataclass(frozen=True)
class QualitySnapshot:
    checked_through: date  # the last local day of the checked interval
    total: int
    passed: int
    warnings: list[str]


def _status_label(t: Messages, status: str | None, value: float | None = 0.0) -> str:
    """A KPI without a value has no status, but "trend only" (a KPI without a target)
    would misstate it: it has a target and nothing to measure this period."""
    if value is None:
        return t("status_unmeasured")
    return t(f"status_{status}") if status else t("status_none")


def _kpi_name(row: dict[str, Any], locale: str) -> str:
    return row["name_zh"] if locale == "zh-CN" else row["name_en"]


def _relative_move(row: dict[str, Any]) -> float:
    scale = abs(row["target"] or row["previous_value"] or 1.0) or 1.0
    return abs(row["value"] - row["previous_value"]) / scale


def build_weekly_report(period: Period, locale: str, department: str | None,
                        trend_rows: list[dict[str, Any]],
                        department_rows: list[dict[str, Any]],
                        quality: QualitySnapshot | None,
                        data_as_of: datetime) -> dict[str, Any]:
    """Everything the weekly template shows, already worded and formatted."""
    t = Messages(locale)
    # The headline KPIs are the tiles; backlog buckets and components of weighted
    # KPIs have their own sections (or none yet).
    this_week = [r for r in trend_rows
                 if r["period_start"] == period.start and r["report_section"] == "headline"]
    this_week.sort(key=lambda r: r["display_order"])

    tiles = [{
        "kpi_id": r["kpi_id"],
        "name": _kpi_name(r, locale),
        "value": t.kpi_value(r["value"], r["unit"]),
        "target": t.kpi_value(r["target"], r["unit"]) if r["target"] is not None else None,
        "status": r["status"] or "none",
        "status_label": _status_label(t, r["status"], r["value"]),
        "change": t.kpi_change(r["value"], r["previous_value"], r["unit"]),
    } for r in this_week]

    weeks = sorted({r["period_start"] for r in trend_rows})[-TREND_WEEKS:]
    labels = [f"W{w.isocalendar()[1]:02d}" for w in weeks]
    trends = []
    for r in this_week:
        by_week = {x["period_start"]: x["value"] for x in trend_rows if x["kpi_id"] == r["kpi_id"]}
        scale = 100.0 if r["unit"] == "fraction" else 1.0
        values = [None if by_week.get(w) is None else by_week[w] * scale for w in weeks]
        target = None if r["target"] is None else r["target"] * scale
        trends.append({"name": _kpi_name(r, locale),
                       "svg": trend_svg(values, labels, target, t("chart_target"),
                                          empty_label=t("no_data"))})

    department_table = _department_table(t, locale, this_week, department_rows) \
        if department is None else None

    year, week, _ = period.start.isocalendar()
    scope = t("scope_department", department=t.department(department)) if department \
        else t("scope_org")
    return {
        "locale": locale,
        "title": t("report_title_weekly"),
        "period_label": period.label,
        "period_text": t("period_week", year=year, week=week, start=t.date(period.start),
                         end=t.date(period.end)),
        "scope": scope,
        "department": department,
        "data_as_of": data_as_of.isoformat(),
        "data_as_of_text": t("data_as_of", as_of=t.moment(data_as_of)),
        "summary": _summary(t, locale, this_week, department_rows if department is None else []),
        "tiles": tiles,
        "trends": trends,
        "department_table": department_table,
        "quality": _quality_panel(t, quality),
        "t": {key: t(key) for key in (
            "section_summary", "section_kpis", "section_trends", "section_departments",
            "section_quality", "col_kpi", "col_value", "col_target", "col_status",
            "col_change", "col_department", "target", "previous")},
        "page_of": t("page_of"),  # placeholders become CSS page counters when rendered
    }


def _summary(t: Messages, locale: str, this_week: list[dict[str, Any]],
             department_rows: list[dict[str, Any]]) -> list[str]:
    measured = [r for r in this_week if r["value"] is not None]
    if not measured:
        return [t("summary_no_data")]
    with_target = [r for r in measured if r["target"] is not None]
    on_target = sum(r["status"] == "green" for r in with_target)
    lines = [t("summary_on_target", on=on_target, total=len(with_target)) if on_target
             else t("summary_none_on_target", total=len(with_target))]
    movers = [r for r in with_target if r["previous_value"] is not None]
    if movers:
        top = max(movers, key=_relative_move)
        lines.append(t("summary_change", kpi=_kpi_name(top, locale),
                       change=t.kpi_change(top["value"], top["previous_value"], top["unit"]),
                       value=t.kpi_value(top["value"], top["unit"]),
                       target=t.kpi_value(top["target"], top["unit"])))
    for red in [r for r in with_target if r["status"] == "red"][:2]:
        candidates = [d for d in department_rows
                      if d["kpi_id"] == red["kpi_id"] and d["value"] is not None]
        if not candidates:
            continue
        pick = min if red["direction"] == "higher" else max
        worst = pick(candidates, key=lambda d: d["value"])
        lines.append(t("summary_worst", kpi=_kpi_name(red, locale),
                       department=t.department(worst["dimension_value"]),
                       value=t.kpi_value(worst["value"], worst["unit"])))
    return lines


def _department_table(t: Messages, locale: str, this_week: list[dict[str, Any]],
                      department_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """KPIs as rows, departments as columns: the catalogue has more KPIs than an A4
    page has room for columns, and a table is never cut at the page edge."""
    by_department: dict[str, dict[str, dict[str, Any]]] = {}
    for row in department_rows:
        by_department.setdefault(row["dimension_value"], {})[row["kpi_id"]] = row
    codes = sorted(by_department)
    body = []
    for kpi in this_week:
        cells = []
        for code in codes:
            row = by_department[code].get(kpi["kpi_id"])
            cells.append({"text": t.kpi_value(row["value"], row["unit"]) if row else t("no_data"),
                          "status": (row or {}).get("status") or "none"})
        body.append({"kpi": _kpi_name(kpi, locale), "cells": cells})
    return {"columns": [t.department(code) for code in codes], "rows": body}


def _quality_panel(t: Messages, quality: QualitySnapshot | None) -> dict[str, Any]:
    if quality is None:
        return {"text": t("quality_not_run"), "warnings": [], "warnings_title": None}
    return {"text": t("quality_passed", passed=quality.passed, total=quality.total,
                      day=t.date(quality.checked_through)),
            "warnings": quality.warnings,
            "warnings_title": t("quality_warnings") if quality.warnings else None}


def period_weeks(period: Period) -> tuple[date, date]:
    """First and last period_start the report reads (12 weeks ending with ``period``)."""
    return period.previous(TREND_WEEKS - 1).start, period.start
