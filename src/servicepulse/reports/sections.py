"""Report sections shared by the weekly and the monthly report: pure functions from
mart rows to worded, formatted template data. Nothing here queries a database or
computes a KPI; "change" is the mart's value minus the mart's previous_value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from servicepulse.kpis import Period
from servicepulse.reports.charts import bar_svg, matrix_svg, trend_svg
from servicepulse.reports.i18n import Messages

TREND_PERIODS = {"week": 12, "month": 13}
# Complaint process order: per-step counts read like a complaint's life.
STEP_ORDER = ("classify", "dispatch", "solution", "close", "callback", "escalate")
# The agent table: speed, resolution, satisfaction and the overall score.
AGENT_KPIS = ("RESP_SLA", "FRT", "FCR", "AHT", "CSAT", "COMPOSITE")
BACKLOG_BUCKETS = ("BACKLOG_AGE_LT_1D", "BACKLOG_AGE_1_3D", "BACKLOG_AGE_3_5D",
                   "BACKLOG_AGE_GT_5D")


@dataclass(frozen=True)
class QualitySnapshot:
    checked_through: date  # the last local day of the checked interval
    total: int
    passed: int
    warnings: list[str]


def trend_window(period: Period) -> tuple[date, date]:
    """First and last period_start a report reads: 12 weeks or 13 months ending with
    ``period`` (13 months hold the same month a year ago)."""
    return period.previous(TREND_PERIODS[period.kind] - 1).start, period.start


def period_label(period_start: date, kind: str) -> str:
    if kind == "week":
        return f"W{period_start.isocalendar()[1]:02d}"
    return f"{period_start:%Y-%m}"


def kpi_name(row: dict[str, Any], locale: str) -> str:
    return row["name_zh"] if locale == "zh-CN" else row["name_en"]


def status_label(t: Messages, status: str | None, value: float | None = 0.0) -> str:
    """A KPI without a value has no status, but "trend only" (a KPI without a target)
    would misstate it: it has a target and nothing to measure this period."""
    if value is None:
        return t("status_unmeasured")
    return t(f"status_{status}") if status else t("status_none")


def headline(rows: list[dict[str, Any]], period: Period) -> list[dict[str, Any]]:
    """The period's headline KPI rows in catalogue order."""
    chosen = [r for r in rows
              if r["period_start"] == period.start and r["report_section"] == "headline"]
    return sorted(chosen, key=lambda r: r["display_order"])


def tiles(t: Messages, locale: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{
        "kpi_id": r["kpi_id"],
        "name": kpi_name(r, locale),
        "value": t.kpi_value(r["value"], r["unit"]),
        "target": t.kpi_value(r["target"], r["unit"]) if r["target"] is not None else None,
        "status": r["status"] or "none",
        "status_label": status_label(t, r["status"], r["value"]),
        "change": t.kpi_change(r["value"], r["previous_value"], r["unit"]),
    } for r in rows]


def trends(t: Messages, locale: str, rows: list[dict[str, Any]],
           trend_rows: list[dict[str, Any]], period: Period) -> list[dict[str, Any]]:
    # Always the full window, oldest first: a report from the first weeks of data shows
    # gaps rather than a shorter axis, so charts of different periods line up.
    count = TREND_PERIODS[period.kind]
    starts = [period.previous(count - 1 - i).start for i in range(count)]
    labels = [period_label(s, period.kind) for s in starts]
    charts = []
    for r in rows:
        by_start = {x["period_start"]: x["value"] for x in trend_rows if x["kpi_id"] == r["kpi_id"]}
        # As the tiles show them: rates in percent, handling times in minutes.
        scale = {"fraction": 100.0, "seconds": 1 / 60}.get(r["unit"], 1.0)
        values = [None if by_start.get(s) is None else by_start[s] * scale for s in starts]
        target = None if r["target"] is None else r["target"] * scale
        charts.append({"name": kpi_name(r, locale),
                       "svg": trend_svg(values, labels, target, t("chart_target"),
                                        empty_label=t("no_data"))})
    return charts


def year_ago(trend_rows: list[dict[str, Any]], period: Period) -> dict[str, float | None]:
    """KPI id -> the value of the same period a year before (in a 13-month window)."""
    start = period.previous(12).start
    return {r["kpi_id"]: r["value"] for r in trend_rows if r["period_start"] == start}


def department_table(t: Messages, locale: str, rows: list[dict[str, Any]],
                     department_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """KPIs as rows, departments as columns: the catalogue has more KPIs than an A4
    page has room for columns, and a table is never cut at the page edge."""
    by_department: dict[str, dict[str, dict[str, Any]]] = {}
    for row in department_rows:
        by_department.setdefault(row["dimension_value"], {})[row["kpi_id"]] = row
    codes = sorted(by_department)
    body = []
    for kpi in rows:
        cells = []
        for code in codes:
            row = by_department[code].get(kpi["kpi_id"])
            cells.append({"text": t.kpi_value(row["value"], row["unit"]) if row else t("no_data"),
                          "status": (row or {}).get("status") or "none"})
        body.append({"kpi": kpi_name(kpi, locale), "cells": cells})
    return {"columns": [t.department(code) for code in codes], "rows": body}


def department_ranking(t: Messages, department_rows: list[dict[str, Any]],
                       department: str | None) -> dict[str, Any] | None:
    """Departments by COMPOSITE, best first, with its three ingredients' KPIs; a
    department's own report shows only its line and its place."""
    composite = {r["dimension_value"]: r for r in department_rows if r["kpi_id"] == "COMPOSITE"}
    if not composite:
        return None
    ranked = sorted(composite.values(),
                    key=lambda r: (r["value"] is None, -(r["value"] or 0), r["dimension_value"]))
    by_key = {(r["dimension_value"], r["kpi_id"]): r for r in department_rows}

    def cell(code: str, kpi_id: str) -> str:
        row = by_key.get((code, kpi_id))
        return t.kpi_value(row["value"], row["unit"]) if row else t("no_data")

    lines = []
    place_text = None
    for place, row in enumerate(ranked, start=1):
        code = row["dimension_value"]
        if department and code != department:
            continue
        if department and row["value"] is not None:
            place_text = t("label_ranking_place", rank=place, count=len(ranked))
        lines.append({"rank": place if row["value"] is not None else "–",
                      "department": t.department(code),
                      "composite": cell(code, "COMPOSITE"),
                      "change": t.kpi_change(row["value"], row["previous_value"], row["unit"]),
                      "csi": cell(code, "CSI"), "resp_sla": cell(code, "RESP_SLA"),
                      "res_rate": cell(code, "RES_RATE"),
                      "compliance": cell(code, "STD_COMPLIANCE")})
    return {"rows": lines, "place_text": place_text}


def agent_table(t: Messages, agent_rows: list[dict[str, Any]],
                kpi_names: dict[str, str]) -> dict[str, Any]:
    """One row per agent (grouped by department), AGENT_KPIS as columns."""
    by_agent: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in agent_rows:
        by_agent.setdefault((row["department"], row["agent_id"]), {})[row["kpi_id"]] = row
    body = []
    for (department, agent_id), kpis in sorted(by_agent.items()):
        handled = kpis.get("RESP_SLA", {}).get("denominator")
        body.append({
            "agent": agent_id, "department": t.department(department),
            "tickets": t.number(handled or 0, decimals=0),
            "cells": [{"text": t.kpi_value(kpis[k]["value"], kpis[k]["unit"])
                       if k in kpis else t("no_data"),
                       "status": (kpis.get(k) or {}).get("status") or "none"}
                      for k in AGENT_KPIS]})
    return {"columns": [kpi_names.get(k, k) for k in AGENT_KPIS], "rows": body}


def audit_table(t: Messages, rows: list[dict[str, Any]],
                department_rows: list[dict[str, Any]], department: str | None
                ) -> list[dict[str, Any]]:
    """Process audits (TPS) and mystery-shopper visits (TDS): the slice's score and
    number of audits, then each department's (organisation report only)."""

    def entry(label: str, kpis: dict[str, dict[str, Any]]) -> dict[str, Any]:
        out = {"label": label}
        for kpi_id in ("TPS", "TDS"):
            row = kpis.get(kpi_id)
            measured = row is not None and row["value"] is not None
            out[kpi_id] = {
                "count": t.number(row["denominator"] if row and row["denominator"] else 0,
                                  decimals=0),
                "score": t.kpi_value(row["value"], row["unit"]) if measured else t("no_data"),
                "target": t.kpi_value(row["target"], row["unit"])
                if row and row.get("target") is not None else "",
                "status": (row or {}).get("status") or "none",
                "status_label": status_label(t, (row or {}).get("status"),
                                             row["value"] if row else None)}
        return out

    own = {r["kpi_id"]: r for r in rows}
    label = t.department(department) if department else t("scope_org")
    lines = [entry(label, own)]
    if department is None:
        by_department: dict[str, dict[str, dict[str, Any]]] = {}
        for row in department_rows:
            if row["kpi_id"] in ("TPS", "TDS"):
                by_department.setdefault(row["dimension_value"], {})[row["kpi_id"]] = row
        lines += [entry(t.department(code), kpis) for code, kpis in sorted(by_department.items())]
    return lines


def backlog(t: Messages, trend_rows: list[dict[str, Any]], period: Period) -> dict[str, Any]:
    """Open tickets and complaints at the period's end by age, against the period
    before (the mart's previous_value)."""
    rows = {r["kpi_id"]: r for r in trend_rows
            if r["period_start"] == period.start and r["kpi_id"] in BACKLOG_BUCKETS}
    buckets = [rows[k] for k in BACKLOG_BUCKETS if k in rows]
    total = {r["kpi_id"]: r for r in trend_rows
             if r["period_start"] == period.start and r["kpi_id"] == "BACKLOG"}.get("BACKLOG")
    largest = max([b["value"] or 0 for b in buckets], default=0)
    return {
        "rows": [{"bucket": t(f"backlog_{b['kpi_id'].lower()}"),
                  "count": t.kpi_value(b["value"], "count"),
                  "change": t.kpi_change(b["value"], b["previous_value"], "count"),
                  "bar": bar_svg(b["value"] or 0, largest)}
                 for b in buckets],
        "total": t.kpi_value(total["value"], "count") if total else t("no_data"),
        "total_change": t.kpi_change(total["value"], total["previous_value"], "count")
        if total else "",
    }


def complaint_categories(t: Messages, category_rows: list[dict[str, Any]],
                         period: Period) -> dict[str, Any]:
    """Complaint categories by volume with the change against the period before, their
    urgent-or-escalated share and their place in the priority matrix."""
    current = [r for r in category_rows if r["period_start"] == period.start]
    before = {r["complaint_category"]: r["complaints"] for r in category_rows
              if r["period_start"] != period.start}
    by_volume = sorted(current, key=lambda r: (-r["complaints"], r["complaint_category"]))
    largest = max([r["complaints"] for r in by_volume], default=0)
    rows = []
    for number, r in enumerate(by_volume, start=1):
        rows.append({
            "number": number,
            "category": t.category(r["complaint_category"]),
            "complaints": t.number(r["complaints"], decimals=0),
            "share": t.kpi_value(r["frequency_share"], "fraction"),
            "change": t.kpi_change(r["complaints"], before.get(r["complaint_category"], 0),
                                   "count"),
            "high_impact": t.kpi_value(r["impact_share"], "fraction"),
            "quadrant": t(f"quadrant_{r['priority_rank']}"),
            "priority_rank": r["priority_rank"],
            "bar": bar_svg(r["complaints"], largest),
        })
    matrix = None
    if current:
        matrix = matrix_svg([(n, r["frequency_share"], r["impact_share"])
                             for n, r in enumerate(by_volume, start=1)],
                            current[0]["frequency_threshold"], current[0]["impact_threshold"])
    return {"rows": rows, "matrix": matrix,
            "fix_first": [r["category"] for r in rows if r["priority_rank"] == 1]}


def breach_list(t: Messages, breaches: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """Which complaint, which step, due when, done when (or still open), how late."""
    counts: dict[str, int] = {}
    for b in breaches:
        counts[b["step"]] = counts.get(b["step"], 0) + 1
    shown = breaches[:limit]
    return {
        "total": len(breaches),
        "by_step": [{"step": t(f"step_{s}"), "count": counts[s]} for s in STEP_ORDER
                    if s in counts],
        "rows": [{
            "complaint": b["complaint_id"],
            "step": t(f"step_{b['step']}"),
            "department": t.department(b["department"]),
            "category": t.category(b["complaint_category"]),
            "received": t.short_moment(b["received_at_local"]),
            "due": t.short_moment(b["due_at_local"]) if b["due_at_local"] else "–",
            "done": t.short_moment(b["done_at_local"]) if b["done_at_local"] else t("not_done"),
            "late": t.duration(b["minutes_late"]) if b["minutes_late"] is not None else "–",
        } for b in shown],
        "more": t("breaches_more", shown=len(shown), total=len(breaches))
        if len(breaches) > len(shown) else None,
    }


def quality_panel(t: Messages, quality: QualitySnapshot | None) -> dict[str, Any]:
    if quality is None:
        return {"text": t("quality_not_run"), "warnings": [], "warnings_title": None}
    return {"text": t("quality_passed", passed=quality.passed, total=quality.total,
                      day=t.date(quality.checked_through)),
            "warnings": quality.warnings,
            "warnings_title": t("quality_warnings") if quality.warnings else None}


def _relative_move(row: dict[str, Any]) -> float:
    scale = abs(row["target"] or row["previous_value"] or 1.0) or 1.0
    return abs(row["value"] - row["previous_value"]) / scale


def summary(t: Messages, locale: str, kind: str, rows: list[dict[str, Any]],
            department_rows: list[dict[str, Any]], categories: dict[str, Any],
            breaches: dict[str, Any]) -> list[str]:
    """What moved, by how much, against which target, and the largest contributor,
    in sentences built from the rows (no sentence without a figure behind it)."""
    when = t(f"this_{kind}")
    measured = [r for r in rows if r["value"] is not None]
    if not measured:
        return [t("summary_no_data", when=when)]
    with_target = [r for r in measured if r["target"] is not None]
    on_target = sum(r["status"] == "green" for r in with_target)
    lines = [t("summary_on_target", on=on_target, total=len(with_target), when=when)
             if on_target else t("summary_none_on_target", total=len(with_target), when=when)]
    movers = [r for r in with_target if r["previous_value"] is not None]
    if movers:
        top = max(movers, key=_relative_move)
        lines.append(t(f"summary_change_{kind}", kpi=kpi_name(top, locale),
                       change=t.kpi_change(top["value"], top["previous_value"], top["unit"]),
                       value=t.kpi_value(top["value"], top["unit"]),
                       target=t.kpi_value(top["target"], top["unit"])))
        # The department that moved furthest the same way: where to look first.
        delta = top["value"] - top["previous_value"]
        same_way = [d for d in department_rows
                    if d["kpi_id"] == top["kpi_id"] and d["value"] is not None
                    and d["previous_value"] is not None
                    and (d["value"] - d["previous_value"]) * delta > 0]
        if delta and same_way:
            lead = max(same_way, key=lambda d: abs(d["value"] - d["previous_value"]))
            lines.append(t("summary_department_move", department=t.department(
                lead["dimension_value"]), change=t.kpi_change(
                lead["value"], lead["previous_value"], lead["unit"])))
    for red in [r for r in with_target if r["status"] == "red"][:2]:
        candidates = [d for d in department_rows
                      if d["kpi_id"] == red["kpi_id"] and d["value"] is not None]
        if not candidates:
            continue
        pick = min if red["direction"] == "higher" else max
        worst = pick(candidates, key=lambda d: d["value"])
        lines.append(t("summary_worst", kpi=kpi_name(red, locale),
                       department=t.department(worst["dimension_value"]),
                       value=t.kpi_value(worst["value"], worst["unit"])))
    if categories["rows"]:
        top_category = categories["rows"][0]
        lines.append(t("summary_categories", category=top_category["category"],
                       count=top_category["complaints"], share=top_category["share"]))
    if breaches["total"]:
        step = max(breaches["by_step"], key=lambda s: s["count"])
        lines.append(t("summary_breaches", total=breaches["total"], step=step["step"],
                       count=step["count"]))
    return lines


def scope_text(t: Messages, department: str | None) -> str:
    return t("scope_department", department=t.department(department)) if department \
        else t("scope_org")


def period_text(t: Messages, period: Period) -> str:
    """"ISO week 47 of 2026 (16 Nov 2026 – 22 Nov 2026)" or the month's equivalent."""
    start, end = t.date(period.start), t.date(period.end)
    if period.kind == "week":
        year, week, _ = period.start.isocalendar()
        return t("period_week", year=year, week=week, start=start, end=end)
    return t("period_month", year=period.start.year, month=period.start.month, start=start,
             end=end)


def header(t: Messages, report: str, period: Period, department: str | None,
           data_as_of: datetime) -> dict[str, Any]:
    """What every report's template needs besides its sections: titles, period, scope,
    the data's as-of moment (also the PDF's dates) and the texts of the period's kind."""
    return {
        "locale": t.locale,
        "report": report,
        "title": t(f"report_title_{report}"),
        "period_label": period.label,
        "period_text": period_text(t, period),
        "scope": scope_text(t, department),
        "department": department,
        "data_as_of": data_as_of.isoformat(),
        "data_as_of_text": t("data_as_of", as_of=t.moment(data_as_of)),
        "t": t.section_texts(period.kind),
        "page_of": t("page_of"),  # placeholders become CSS page counters when rendered
    }
