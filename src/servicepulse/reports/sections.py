"""Report sections shared by the weekly and the monthly report: pure functions from
mart rows to worded, formatted template data. Nothing here queries a database or
computes a KPI; "change" is the mart's value minus the mart's previous_value."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from servicepulse.actions.store import days_overdue, problem_in
from servicepulse.kpis import Period
from servicepulse.reports.charts import bar_svg, matrix_svg, trend_svg, value_range
from servicepulse.reports.i18n import Messages

TREND_PERIODS = {"week": 12, "month": 13}
# Charts draw KPIs as the tiles print them: rates in percent, handling times in minutes.
CHART_SCALE = {"fraction": 100.0, "seconds": 1 / 60}
# What a unit can take, as charted: an axis never runs past it (no 101 % tick, no
# negative count).
CHART_BOUNDS = {"fraction": (0.0, 100.0), "count": (0.0, None), "minutes": (0.0, None),
                "seconds": (0.0, None), "index": (0.0, 100.0), "points": (-100.0, 100.0),
                "score": (0.0, None), "rating": (1.0, 5.0)}
# KPIs that measure like with like are charted to one value axis, so their lines compare
# at a glance: one measure at two points of its distribution; the complaint process's
# deadlines met (each step held to its own deadline); the two audit scores (one scoring
# sheet). Every other chart fits its own values: a complaint rate of 2 % and a CSAT of
# 90 % on one axis would show neither.
CHART_FAMILIES = (
    ("FRT", "FRT_P90"),
    ("CMP_SOLUTION_24H", "CMP_CLOSE_5WD", "CALLBACK_2WD", "STEP_CLASSIFY_30M",
     "STEP_DISPATCH_1H", "STEP_ESCALATION"),
    ("TPS", "TDS"),
    ("SURVEY_ATTITUDE", "SURVEY_SPEED", "SURVEY_PROFESSIONALISM"),
)


def chart_family(kpi_id: str) -> str:
    """The name of the value axis ``kpi_id`` is drawn to: its family's first KPI, or itself."""
    return next((family[0] for family in CHART_FAMILIES if kpi_id in family), kpi_id)
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


def not_measured(row: dict[str, Any] | None) -> bool:
    """The sources cannot deliver what the KPI needs (the mart says why): it has no
    value, and a report shows "n/a — not measured", never 0 % or red."""
    return bool(row and row.get("not_measured_reason"))


def value_text(t: Messages, row: dict[str, Any] | None) -> str:
    if row is None:
        return t("no_data")
    if not_measured(row):
        return t("not_measured")
    return t.kpi_value(row["value"], row["unit"])


def comparable(row: dict[str, Any] | None) -> bool:
    """Whether a row's value may be compared with others' (ranked, named weakest): it
    is measured, has a value, and is not a rate over nothing."""
    return (row is not None and not not_measured(row) and row["value"] is not None
            and row.get("denominator") != 0 and not few_cases(row))


def _extremes(t: Messages, rows: list[dict[str, Any]], pick, key) -> list[dict[str, Any]]:
    """The rows sharing the extreme value as a reader sees it (two departments both
    shown as 66.7 % are tied, whatever the digits beyond): one row names someone, more
    name no one, and never the alphabetically first."""
    best = pick(rows, key=key)
    shown = t.kpi_value(key(best), best["unit"])
    return [r for r in rows if t.kpi_value(key(r), r["unit"]) == shown]


def _contributes(row: dict[str, Any]) -> bool:
    """A row with neither value nor observations (a department without complaints for a
    complaint rate) adds nothing to a group's sum."""
    return not (row["value"] is None and not row.get("numerator") and not row.get("denominator"))


def combined(rows: list[dict[str, Any]], unit: str) -> dict[str, Any] | None:
    """Several slices' rows of one KPI as one row ("others", a remainder): counts add;
    a rate whose every row reads value = numerator / denominator adds numerators and
    denominators. Anything else (medians, scores, weighted indices) cannot be summed:
    None, which a report shows as "—". Not measured stays not measured."""
    if any(not_measured(r) for r in rows):
        return {"value": None, "unit": unit, "not_measured_reason": next(
            r["not_measured_reason"] for r in rows if not_measured(r)), "status": None}
    parts = [r for r in rows if _contributes(r)]
    if not parts:
        return {"value": None, "unit": unit, "status": None}
    if unit == "count":
        return {"value": sum(r["value"] or 0 for r in parts), "unit": unit, "status": None}
    if all(r.get("numerator") is not None and r.get("denominator")
           and r["value"] is not None
           and math.isclose(r["value"], r["numerator"] / r["denominator"], rel_tol=1e-6,
                            abs_tol=1e-9) for r in parts):
        numerator = sum(r["numerator"] for r in parts)
        denominator = sum(r["denominator"] for r in parts)
        return {"value": numerator / denominator, "numerator": numerator,
                "denominator": denominator, "unit": unit, "status": None}
    return None


def combined_text(t: Messages, row: dict[str, Any] | None) -> str:
    return "—" if row is None else value_text(t, row)


# The measure that orders departments in long tables: their volume, i.e. the tickets
# (service requests) created in the period: TICKETS, else CMP_RATE's or RESP_SLA's
# denominator (the same tickets), else the open backlog. Volume, not a KPI value: the
# largest departments weigh most in the organisation's figures, and ordering by a rate
# would put a department with one ticket at 100 % first.
VOLUME_KPIS = (("TICKETS", "value"), ("CMP_RATE", "denominator"), ("RESP_SLA", "denominator"),
               ("BACKLOG", "value"))


def department_volume(department_rows: list[dict[str, Any]]) -> tuple[str | None, dict[str, float]]:
    """(KPI id the volume is read from, department -> volume) for the first of
    VOLUME_KPIS any department has a figure for."""
    for kpi_id, column in VOLUME_KPIS:
        volume = {r["dimension_value"]: r[column] or 0 for r in department_rows
                  if r["kpi_id"] == kpi_id and not not_measured(r)
                  and r.get(column) is not None}
        if any(volume.values()):
            return kpi_id, volume
    return None, {}


def departments_by_volume(department_rows: list[dict[str, Any]]) -> tuple[str | None, list[str]]:
    kpi_id, volume = department_volume(department_rows)
    codes = sorted({r["dimension_value"] for r in department_rows})
    # Largest first; equal volumes in code order (an order to read, not a verdict).
    return kpi_id, sorted(codes, key=lambda c: (-volume.get(c, 0), c))


def headline(rows: list[dict[str, Any]], period: Period) -> list[dict[str, Any]]:
    """The period's headline KPI rows in catalogue order."""
    chosen = [r for r in rows
              if r["period_start"] == period.start and r["report_section"] == "headline"]
    return sorted(chosen, key=lambda r: r["display_order"])



def tiles(t: Messages, locale: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{
        "kpi_id": r["kpi_id"],
        "name": kpi_name(r, locale),
        "value": value_text(t, r),
        "not_measured": not_measured(r),
        "reason": r.get("not_measured_reason"),
        "target": t.kpi_value(r["target"], r["unit"]) if r["target"] is not None else None,
        "status": "none" if not_measured(r) else (r["status"] or "none"),
        "status_label": t("status_not_measured") if not_measured(r)
        else status_label(t, r["status"], r["value"]),
        "change": t.kpi_change(r["value"], r["previous_value"], r["unit"]),
        "sample": sample_text(t, r),
    } for r in rows]


def sample_text(t: Messages, row: dict[str, Any] | None) -> str | None:
    """"n = 12" beside a figure that rests on few cases (see few_cases), else None."""
    return t("sample_size", n=row["sample_size"]) if few_cases(row) else None



def trends(t: Messages, locale: str, rows: list[dict[str, Any]],
           trend_rows: list[dict[str, Any]], period: Period,
           incomplete: bool = False) -> dict[str, Any]:
    """A chart per KPI with a value in the window; the KPIs without (not measured, or no
    data yet) are named in one line instead of drawing empty frames. The current period,
    if incomplete, is marked with an asterisk on the axis and explained in a note."""
    # Always the full window, oldest first: a report from the first weeks of data shows
    # gaps rather than a shorter axis, so charts of different periods line up.
    count = TREND_PERIODS[period.kind]
    starts = [period.previous(count - 1 - i).start for i in range(count)]
    labels = [period_label(s, period.kind) for s in starts]
    if incomplete:
        labels[-1] += "*"
    series, unmeasured, empty = [], [], []
    for r in rows:
        if not_measured(r):
            unmeasured.append(kpi_name(r, locale))
            continue
        by_start = {x["period_start"]: x["value"] for x in trend_rows
                    if x["kpi_id"] == r["kpi_id"] and not not_measured(x)}
        # As the tiles show them: rates in percent, handling times in minutes.
        scale = CHART_SCALE.get(r["unit"], 1.0)
        values = [None if by_start.get(s) is None else by_start[s] * scale for s in starts]
        if all(v is None for v in values):
            empty.append(kpi_name(r, locale))
            continue
        target = None if r["target"] is None else r["target"] * scale
        series.append((r, values, target))
    ranges: dict[str, list[tuple[float, float]]] = {}
    for r, values, target in series:
        ranges.setdefault(chart_family(r["kpi_id"]), []).append(
            value_range(values, target, CHART_BOUNDS.get(r["unit"], (None, None))))
    charts = []
    for r, values, target in series:
        family = ranges[chart_family(r["kpi_id"])]
        shared = len(family) > 1
        charts.append({"name": kpi_name(r, locale), "shared_scale": shared,
                       "svg": trend_svg(values, labels, target, t("chart_target"),
                                        format_number=lambda v, d: t.number(v, decimals=d),
                                        decimals=0 if r["unit"] == "count" else 1,
                                        unit_label=t(f"axis_unit_{r['unit']}"),
                                        scale=(min(low for low, _ in family),
                                               max(high for _, high in family))
                                        if shared else None,
                                        bounds=CHART_BOUNDS.get(r["unit"], (None, None)),
                                        empty_label=t("no_data"))})
    joiner = t("label_joiner")
    return {"charts": charts,
            "not_measured": t("trends_not_measured", kpis=joiner.join(unmeasured))
            if unmeasured else None,
            "no_data": t("trends_no_data", kpis=joiner.join(empty)) if empty else None}


def on_target_trend(t: Messages, trend_rows: list[dict[str, Any]], period: Period,
                    incomplete: bool = False) -> dict[str, Any]:
    """Per period of the trend window: how many headline KPIs with a target and a value
    were on target, of how many ("on" / "measured", None for a period without any) — the
    summary's first figure, over time; the e-mail draws it. ``alt`` says it in words for
    a mail client that shows no images."""
    count = TREND_PERIODS[period.kind]
    starts = [period.previous(count - 1 - i).start for i in range(count)]
    on, measured = [], []
    for start in starts:
        judged = [r for r in trend_rows if r["period_start"] == start
                  and r["report_section"] == "headline" and r["target"] is not None
                  and r["value"] is not None and not not_measured(r)]
        on.append(sum(r["status"] == "green" for r in judged) if judged else None)
        measured.append(len(judged) or None)
    labels = [period_label(s, period.kind) for s in starts]
    if incomplete:
        labels[-1] += "*"
    joiner = t("label_joiner")
    return {"title": t(f"email_chart_title_{period.kind}", count=count),
            "labels": labels, "on": on, "measured": measured,
            "alt": t(f"email_chart_title_{period.kind}", count=count) + t("label_colon")
            + joiner.join(t("email_chart_point", period=label, on=o, measured=m)
                          for label, o, m in zip(labels, on, measured) if m)}


def feedback(t: Messages, locale: str, trend_rows: list[dict[str, Any]], period: Period,
             comments: list[dict[str, Any]] | None = None,
             incomplete: bool = False) -> dict[str, Any]:
    """Customer feedback: the survey response rate (answered of sent, by the period the
    surveys were sent in) and the dimension scores (the report_section ``feedback`` KPIs)
    with their trends, and, when the report's configuration asks, a sample of the
    customers' comments, already masked (reports.feedback_data)."""
    rows = sorted((r for r in trend_rows if r["period_start"] == period.start
                   and r["report_section"] == "feedback"), key=lambda r: r["display_order"])
    if not rows:
        return {"empty": t("feedback_no_surveys"), "tiles": [], "comments": []}
    if all(not_measured(r) for r in rows):
        reasons = sorted({r["not_measured_reason"] for r in rows})
        return {"empty": t("not_measured") + t("label_colon") + "; ".join(reasons),
                "tiles": [], "comments": []}
    response = next((r for r in rows if r["kpi_id"] == "SURVEY_RESPONSE"), None)
    answered = None
    if response is not None and not not_measured(response) and response["denominator"]:
        answered = t("feedback_answered_of_sent", answered=t.number(response["numerator"], 0),
                     sent=t.number(response["denominator"], 0),
                     unanswered=t.number(response["denominator"] - response["numerator"], 0))

    def score(value: int | None) -> str:
        return "–" if value is None else str(value)

    return {
        "empty": None,
        "tiles": tiles(t, locale, rows),
        "answered": answered,
        "trends": trends(t, locale, rows, trend_rows, period, incomplete),
        "comments": [{
            "day": f"{c['answered_on']:%m-%d}", "department": t.department(c["department"]),
            "scores": [score(c[key]) for key in ("satisfaction", "attitude_score",
                                                 "speed_score", "professionalism_score")],
            "text": c["comment"]} for c in comments or []],
    }


def year_ago(trend_rows: list[dict[str, Any]], period: Period) -> dict[str, float | None]:
    """KPI id -> the value of the same period a year before (in a 13-month window)."""
    start = period.previous(12).start
    return {r["kpi_id"]: r["value"] for r in trend_rows if r["period_start"] == start}



def _cell(t: Messages, row: dict[str, Any] | None) -> dict[str, Any]:
    return {"text": value_text(t, row), "sample": sample_text(t, row),
            "status": "none" if row is None or not_measured(row) else (row["status"] or "none"),
            # The figures behind the text, for the tests' sums.
            "value": None if row is None else row["value"],
            "numerator": None if row is None else row.get("numerator"),
            "denominator": None if row is None else row.get("denominator")}


def _others_cell(t: Messages, row: dict[str, Any] | None) -> dict[str, Any]:
    cell = _cell(t, row)
    cell["text"], cell["status"] = combined_text(t, row), "none"
    return cell


def department_table(t: Messages, locale: str, rows: list[dict[str, Any]],
                     department_rows: list[dict[str, Any]], columns: int = 5,
                     attachment_name: str = "departments.csv") -> dict[str, Any] | None:
    """KPIs as rows, the ``columns`` largest departments (by volume, see VOLUME_KPIS)
    as columns, the rest summed as "others", then the organisation: the catalogue has
    more KPIs than an A4 page has room for columns, and a table is never cut at the
    page edge. With more departments than columns, every department's figures go into
    a CSV file attached to the PDF (``attachment``): as a PDF table, 200 departments by
    22 KPIs were 4,400 cells, 17 pages and 12 s of the render."""
    if not department_rows:
        return None
    by_department: dict[str, dict[str, dict[str, Any]]] = {}
    for row in department_rows:
        by_department.setdefault(row["dimension_value"], {})[row["kpi_id"]] = row
    volume_kpi, codes = departments_by_volume(department_rows)
    shown, rest = codes[:columns], codes[columns:]
    body = []
    # A KPI the sources cannot measure is n/a in every column: the tiles and the
    # summary say so once, and the table keeps to what is measured.
    for kpi in [r for r in rows if not not_measured(r)]:
        cells = [_cell(t, by_department[code].get(kpi["kpi_id"])) for code in shown]
        if rest:
            cells.append(_others_cell(t, combined(
                [by_department[c][kpi["kpi_id"]] for c in rest
                 if kpi["kpi_id"] in by_department[c]], kpi["unit"])))
        cells.append(_cell(t, kpi))
        body.append({"kpi": kpi_name(kpi, locale), "kpi_id": kpi["kpi_id"], "cells": cells})
    headers = [t.department(code) for code in shown]
    if rest:
        headers.append(t("label_others", count=len(rest)))
    headers.append(t("scope_org"))
    names = {r["kpi_id"]: kpi_name(r, locale) for r in rows}
    names["TICKETS"] = t("col_tickets")  # not a headline KPI, so not among ``rows``
    volume_name = names.get(volume_kpi)
    attachment = None
    if rest:
        attachment = {"name": attachment_name,
                      "description": t("attachment_departments_description"),
                      "text": departments_csv(t, locale, rows, by_department, codes)}
    note = None
    if rest:
        note = (t("label_departments_top", shown=len(shown), total=len(codes),
                  measure=volume_name) if volume_name else
                t("label_departments_top_unordered", shown=len(shown), total=len(codes)))
        note += " " + t("label_departments_attachment", file=attachment_name)
    return {"columns": headers, "rows": body, "shown": shown, "others": rest,
            "note": note, "attachment": attachment}


def departments_csv(t: Messages, locale: str, rows: list[dict[str, Any]],
                    by_department: dict[str, dict[str, dict[str, Any]]],
                    codes: list[str]) -> str:
    """Every department (alphabetical, to look one up), each KPI as the report prints
    it, and why a KPI is not measured. UTF-8 with a byte-order mark, which spreadsheet
    programs need to read Chinese."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([t("col_department"), *(kpi_name(k, locale) for k in rows),
                     t("col_not_measured_reason")])
    for code in sorted(codes):
        own = by_department[code]
        reasons = sorted({r["not_measured_reason"] for r in own.values() if not_measured(r)})
        writer.writerow([t.department(code),
                         *(value_text(t, own.get(k["kpi_id"])) for k in rows),
                         "; ".join(reasons)])
    return "\ufeff" + out.getvalue()

def competition_ranks(rows: list[dict[str, Any]], key) -> dict[int, tuple[int, int]]:
    """id(row) -> (place, how many share it): equal values share a place ("1, 2, 2,
    4"), so a tie is shown as one, never split by name."""
    places = {}
    for row in rows:
        better = sum(key(other) > key(row) for other in rows)
        same = sum(key(other) == key(row) for other in rows)
        places[id(row)] = (better + 1, same)
    return places


def department_ranking(t: Messages, department_rows: list[dict[str, Any]],
                       department: str | None, top_n: int | None = None,
                       organisation: list[dict[str, Any]] | None = None
                       ) -> dict[str, Any] | None:
    """Departments by COMPOSITE, best first, with its three ingredients' KPIs; a
    department's own report shows only its line and its place. Only a measured
    composite is ranked; equal composites (as printed) share a place. The
    organisation's report shows the first ``top_n`` lines, the rest summed as
    "others", and the organisation; the whole ranking goes to the appendix."""
    composite = {r["dimension_value"]: r for r in department_rows if r["kpi_id"] == "COMPOSITE"}
    if composite and all(not_measured(r) for r in composite.values()):
        # The sources cannot give a composite: one line that says why, no table of n/a.
        reasons = sorted({r["not_measured_reason"] for r in composite.values()})
        return {"rows": [], "place_text": None, "others": None, "total": None,
                "appendix": None, "note": None,
                "empty": t("not_measured") + t("label_colon") + "; ".join(reasons)}
    if not composite or not any(comparable(r) for r in composite.values()):
        return None
    rankable = [r for r in composite.values() if comparable(r)]

    def shown_value(row: dict[str, Any]) -> float:
        # The value as printed (one decimal): what a reader can tell apart.
        return round(row["value"], 1)

    places = competition_ranks(rankable, shown_value)
    ranked = sorted(rankable, key=lambda r: (places[id(r)][0], r["dimension_value"]))
    ranked += sorted((r for r in composite.values() if not comparable(r)),
                     key=lambda r: r["dimension_value"])
    by_key = {(r["dimension_value"], r["kpi_id"]): r for r in department_rows}
    ingredients = ("CSI", "RESP_SLA", "RES_RATE", "STD_COMPLIANCE")

    def rank_text(row: dict[str, Any]) -> str | int:
        if id(row) not in places:
            return "–"
        place, sharing = places[id(row)]
        return t("rank_tied", rank=place) if sharing > 1 else place

    def line(row: dict[str, Any]) -> dict[str, Any]:
        code = row["dimension_value"]
        return {"rank": rank_text(row), "department": t.department(code),
                "composite": value_text(t, row),
                "change": t.kpi_change(row["value"], row["previous_value"], row["unit"]),
                **{k.lower(): value_text(t, by_key.get((code, k))) for k in ingredients}}

    if department:
        own = [r for r in ranked if r["dimension_value"] == department]
        place_text = None
        if own and id(own[0]) in places:
            place, sharing = places[id(own[0])]
            place_text = (t("label_ranking_place_tied", rank=place, count=len(rankable),
                            sharing=sharing) if sharing > 1
                          else t("label_ranking_place", rank=place, count=len(rankable)))
        return {"rows": [line(r) for r in own], "place_text": place_text, "others": None,
                "total": None, "appendix": None, "note": None, "empty": None}
    shown = ranked if top_n is None else ranked[:top_n]
    rest = ranked[len(shown):]
    others = total = None
    if rest:
        rest_codes = {r["dimension_value"] for r in rest}
        units = {r["kpi_id"]: r["unit"] for r in department_rows}
        others = {"department": t("label_others", count=len(rest)), "rank": "", "change": "",
                  **{k.lower(): combined_text(t, combined(
                      [r for r in department_rows
                       if r["kpi_id"] == k and r["dimension_value"] in rest_codes],
                      units.get(k, "index"))) for k in ("COMPOSITE", *ingredients)}}
    if organisation:
        own_rows = {r["kpi_id"]: r for r in organisation}
        total = {"department": t("scope_org"), "rank": "",
                 "change": t.kpi_change(own_rows["COMPOSITE"]["value"],
                                        own_rows["COMPOSITE"]["previous_value"],
                                        own_rows["COMPOSITE"]["unit"])
                 if "COMPOSITE" in own_rows else "",
                 **{k.lower(): value_text(t, own_rows.get(k))
                    for k in ("COMPOSITE", *ingredients)}}
    return {"rows": [line(r) for r in shown], "place_text": None, "others": others,
            "total": total, "appendix": [line(r) for r in ranked] if rest else None,
            "note": t("label_ranking_top", shown=len(shown), total=len(ranked))
            if rest else None, "empty": None}



def agent_table(t: Messages, agent_rows: list[dict[str, Any]],
                kpi_names: dict[str, str]) -> dict[str, Any] | None:
    """One row per agent (grouped by department), AGENT_KPIS as columns; None when the
    sources know no agents (the section is then one line)."""
    if not agent_rows:
        return None
    by_agent: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in agent_rows:
        by_agent.setdefault((row["department"], row["agent_id"]), {})[row["kpi_id"]] = row
    body = []
    for (department, agent_id), kpis in sorted(by_agent.items()):
        handled = kpis.get("RESP_SLA", {}).get("denominator")
        body.append({
            "agent": agent_id, "department": t.department(department),
            "tickets": t.number(handled or 0, decimals=0),
            "cells": [_cell(t, kpis.get(k)) for k in AGENT_KPIS]})
    return {"columns": [kpi_names.get(k, k) for k in AGENT_KPIS], "rows": body}



def audit_table(t: Messages, rows: list[dict[str, Any]],
                department_rows: list[dict[str, Any]], department: str | None,
                top_n: int | None = None) -> dict[str, Any] | None:
    """Process audits (TPS) and mystery-shopper visits (TDS): the slice's score and
    number of audits, then (organisation report only) the ``top_n`` departments with
    the most audits and the rest summed as "others". None when nothing was audited;
    only ``empty`` (a line) when audits are not measured."""

    def entry(label: str, kpis: dict[str, dict[str, Any] | None],
              summed: bool = False) -> dict[str, Any]:
        out = {"label": label}
        for kpi_id in ("TPS", "TDS"):
            row = kpis.get(kpi_id)
            if summed:  # "others": the audits add up; a score only as sum / count
                count = kpis[f"{kpi_id}_count"]
                out[kpi_id] = {"count": t.number(count, decimals=0),
                               "score": combined_text(t, row), "status": "none",
                               "status_label": ""}
                continue
            out[kpi_id] = {
                "count": t.number(row["denominator"] if row and row.get("denominator") else 0,
                                  decimals=0),
                "score": value_text(t, row),
                "status": "none" if row is None or not_measured(row)
                else (row.get("status") or "none"),
                "status_label": "" if row is None
                else t("status_not_measured") if not_measured(row)
                else status_label(t, row.get("status"), row["value"])}
        return out

    own = {r["kpi_id"]: r for r in rows if r["kpi_id"] in ("TPS", "TDS")}
    if own and all(not_measured(r) for r in own.values()):
        # No audit source: one line that says so and why, not a table of "n/a".
        reasons = sorted({r["not_measured_reason"] for r in own.values()})
        return {"empty": t("not_measured") + t("label_colon") + "; ".join(reasons)}
    if all(r["value"] is None and not not_measured(r) for r in own.values()):
        return None
    label = t.department(department) if department else t("scope_org")
    lines = [entry(label, own)]
    others = None
    if department is None:
        by_department: dict[str, dict[str, dict[str, Any]]] = {}
        for row in department_rows:
            if row["kpi_id"] in ("TPS", "TDS"):
                by_department.setdefault(row["dimension_value"], {})[row["kpi_id"]] = row

        def audits(kpis: dict[str, dict[str, Any]]) -> float:
            return sum((r.get("denominator") or 0) for r in kpis.values())

        audited = sorted((c for c, k in by_department.items() if audits(k)),
                         key=lambda c: (-audits(by_department[c]), c))
        shown = audited if top_n is None else audited[:top_n]
        lines += [entry(t.department(code), by_department[code]) for code in shown]
        rest = audited[len(shown):]
        if rest:
            summed: dict[str, Any] = {}
            for k in ("TPS", "TDS"):
                group = [by_department[c][k] for c in rest if k in by_department[c]]
                summed[k] = combined(group, own[k]["unit"] if k in own else "score")
                summed[f"{k}_count"] = sum(r.get("denominator") or 0 for r in group)
            others = entry(t("label_others", count=len(rest)), summed, summed=True)
    return {"rows": lines, "others": others, "empty": None}


def backlog_moment(period: Period, as_of: datetime) -> datetime:
    """When a report counts its backlog (local, naive): the end of the period's last day,
    or, while the period is not over in the data, the end of the day before the as-of
    day, as the BACKLOG KPI is measured."""
    period_end = datetime.combine(period.end + timedelta(days=1), datetime.min.time())
    return min(period_end, datetime.combine(as_of.date(), datetime.min.time()))


def backlog(t: Messages, trend_rows: list[dict[str, Any]], period: Period,
            oldest_open: list[dict[str, Any]] | None = None,
            data_as_of: datetime | None = None) -> dict[str, Any] | None:
    """Open tickets and complaints at the period's end by age, against the period
    before (the mart's previous_value), and the oldest of them: which, how old, in which
    department and held by whom (reports.data.oldest_open_items)."""
    rows = {r["kpi_id"]: r for r in trend_rows
            if r["period_start"] == period.start and r["kpi_id"] in BACKLOG_BUCKETS}
    buckets = [rows[k] for k in BACKLOG_BUCKETS if k in rows]
    total = {r["kpi_id"]: r for r in trend_rows
             if r["period_start"] == period.start and r["kpi_id"] == "BACKLOG"}.get("BACKLOG")
    if total is None and not any(b["value"] is not None for b in buckets) \
            or total is not None and not_measured(total):
        return None  # one line: no backlog figures (or the sources cannot give them)
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
        # Counted at the end of a day: "the oldest open items at the end of 29 Nov".
        "oldest_title": t("label_backlog_oldest", day=t.date(
            backlog_moment(period, data_as_of).date() - timedelta(days=1)))
        if data_as_of else None,
        "oldest": [{"kind": t(f"backlog_item_{item['item_kind']}"), "item": item["item_id"],
                    "department": t.department(item["department"]),
                    "owner": item["agent_id"] or "–",
                    "category": t.category(item["complaint_category"])
                    if item["complaint_category"] else "–",
                    "opened": t.date(item["opened_at_local"].date()),
                    "age": t.duration(item["age_days"] * 24 * 60)}
                   for item in oldest_open or []],
    }



def complaint_categories(t: Messages, category_rows: list[dict[str, Any]],
                         period: Period, top_n: int | None = None) -> dict[str, Any]:
    """Complaint categories by volume with the change against the period before, their
    urgent-or-escalated share and their place in the priority matrix: the ``top_n``
    largest, the rest summed as "others" (complaints, shares and the period before
    add; the urgent share is their urgent complaints over their complaints), the total,
    and every category for the appendix when some were summed."""
    current = [r for r in category_rows if r["period_start"] == period.start]
    before = {r["complaint_category"]: r["complaints"] for r in category_rows
              if r["period_start"] != period.start}
    # Volume orders the table (the measure the section is about); equal volumes in
    # code order, which is an order to read, not a verdict.
    by_volume = sorted(current, key=lambda r: (-r["complaints"], r["complaint_category"]))
    shown = by_volume if top_n is None else by_volume[:top_n]
    rest = by_volume[len(shown):]
    largest = max([r["complaints"] for r in by_volume], default=0)

    def line(number: int, r: dict[str, Any]) -> dict[str, Any]:
        return {
            "number": number,
            "category": t.category(r["complaint_category"]),
            "complaints": t.number(r["complaints"], decimals=0),
            "count": r["complaints"],
            "share": t.kpi_value(r["frequency_share"], "fraction"),
            "change": t.kpi_change(r["complaints"], before.get(r["complaint_category"], 0),
                                   "count"),
            "high_impact": t.kpi_value(r["impact_share"], "fraction"),
            "quadrant": t(f"quadrant_{r['priority_rank']}"),
            "priority_rank": r["priority_rank"],
            "bar": bar_svg(r["complaints"], largest),
        }

    def summed(label: str, group: list[dict[str, Any]]) -> dict[str, Any]:
        complaints = sum(r["complaints"] for r in group)
        urgent = sum(r["high_impact_complaints"] for r in group)
        earlier = sum(before.get(r["complaint_category"], 0) for r in group)
        return {"category": label, "count": complaints,
                "complaints": t.number(complaints, decimals=0),
                "share": t.kpi_value(sum(r["frequency_share"] for r in group), "fraction"),
                "change": t.kpi_change(complaints, earlier, "count"),
                "high_impact": t.kpi_value(urgent / complaints, "fraction")
                if complaints else "—",
                # No bar: the sum of many would dwarf (or overflow) the scale of one.
                "bar": ""}

    rows = [line(n, r) for n, r in enumerate(shown, start=1)]
    matrix = None
    if current:
        # Only the numbered lines of the table are drawn: forty overlapping markers
        # say nothing, and every marker's number must be a row beside it.
        matrix = matrix_svg([(n, r["frequency_share"], r["impact_share"])
                             for n, r in enumerate(shown, start=1)],
                            current[0]["frequency_threshold"], current[0]["impact_threshold"])
    return {"rows": rows, "matrix": matrix,
            "others": summed(t("label_others_categories", count=len(rest)), rest)
            if rest else None,
            "total": summed(t("label_total"), by_volume) if rest else None,
            "appendix": [line(n, r) for n, r in enumerate(by_volume, start=1)] if rest else None,
            "fix_first": [t.category(r["complaint_category"]) for r in by_volume
                          if r["priority_rank"] == 1]}


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


# "Moved most" is judged against how much each KPI usually moves: its change this
# period, in its own unit, divided by the median size of its period-to-period changes in
# the trend window before this one. A complaint rate that usually moves 0.1 pp and
# moved 0.4 pp moved more, for it, than a first response time that usually moves 8 min
# and moved 7 min. The median needs USUAL_MOVE_MIN_CHANGES earlier changes; before
# that (a new KPI, the first weeks of data) the summary falls back on status: the KPI
# whose status moved furthest (on target <-> off target).
USUAL_MOVE_MIN_CHANGES = 4
STATUS_ORDER = {"green": 0, "amber": 1, "red": 2}
# The smallest change a report prints (0.1 pp, 0.1 min, one case): a "usual move" below
# it would make noise look large.
_PRINTED_STEP = {"fraction": 0.001, "minutes": 0.1, "seconds": 6.0, "count": 1.0}


def printed_step(unit: str) -> float:
    return _PRINTED_STEP.get(unit, 0.1)


def few_cases(row: dict[str, Any] | None) -> bool:
    """The row's value rests on fewer cases than the report's minimum (the reader marks
    it, see reports.data): shown with its n, never ranked or named as a mover."""
    return bool(row and row.get("few_cases"))


def usual_move(trend_rows: list[dict[str, Any]], kpi_id: str, period_start: date,
               kind: str) -> float | None:
    """The median absolute change between consecutive periods of ``kpi_id`` before
    ``period_start`` (both with a value, neither on few cases); None with fewer than
    USUAL_MOVE_MIN_CHANGES such changes."""
    by_start = {r["period_start"]: r for r in trend_rows
                if r["kpi_id"] == kpi_id and r["period_start"] < period_start}
    changes = []
    for start, row in by_start.items():
        before = by_start.get(_previous_start(start, kind))
        if (before is not None and row["value"] is not None and before["value"] is not None
                and not few_cases(row) and not few_cases(before)):
            changes.append(abs(row["value"] - before["value"]))
    if len(changes) < USUAL_MOVE_MIN_CHANGES:
        return None
    changes.sort()
    middle = len(changes) // 2
    return changes[middle] if len(changes) % 2 else (changes[middle - 1] + changes[middle]) / 2


def _previous_start(start: date, kind: str) -> date:
    period = Period.week_of(start) if kind == "week" else Period.parse(f"{start:%Y-%m}")
    return period.previous().start


def summary(t: Messages, locale: str, kind: str, rows: list[dict[str, Any]],
            department_rows: list[dict[str, Any]], categories: dict[str, Any],
            breaches: dict[str, Any], trend_rows: list[dict[str, Any]]) -> list[str]:
    """What moved, by how much, against which target, and the largest contributor,
    in sentences built from the rows (no sentence without a figure behind it). A KPI
    that is not measured is only listed as such: it is in no count, move or verdict.
    Ties name no one: two departments equally weak are "tied", not the first by name."""
    when = t(f"this_{kind}")
    joiner = t("label_joiner")
    unmeasured = [r for r in rows if not_measured(r)]
    measured = [r for r in rows if not not_measured(r) and r["value"] is not None]
    lines = []
    if not measured:
        lines.append(t("summary_no_data", when=when))
    else:
        with_target = [r for r in measured if r["target"] is not None]
        on_target = sum(r["status"] == "green" for r in with_target)
        if with_target:  # "none of the 0 indicators" says nothing
            lines.append(t("summary_on_target", on=on_target, total=len(with_target),
                           when=when) if on_target else
                         t("summary_none_on_target", total=len(with_target), when=when))
        lines += _movers(t, locale, kind, with_target, department_rows, trend_rows)
        for red in [r for r in with_target if r["status"] == "red"][:2]:
            candidates = [d for d in department_rows
                          if d["kpi_id"] == red["kpi_id"] and comparable(d)]
            if len(candidates) < 2:  # one department is no one's weakest
                continue
            pick = min if red["direction"] == "higher" else max
            weakest = _extremes(t, candidates, pick, key=lambda d: d["value"])
            value = t.kpi_value(weakest[0]["value"], weakest[0]["unit"])
            if len(weakest) == 1:
                lines.append(t("summary_worst", kpi=kpi_name(red, locale),
                               department=t.department(weakest[0]["dimension_value"]),
                               value=value))
            else:
                lines.append(t("summary_worst_tied", kpi=kpi_name(red, locale),
                               count=len(weakest), total=len(candidates), value=value))
    if unmeasured:
        lines.append(t("summary_not_measured", count=len(unmeasured),
                       kpis=joiner.join(kpi_name(r, locale) for r in unmeasured)))
    if categories["rows"]:
        top_category = categories["rows"][0]
        # Whole numbers, printed without decimals: equal text is an equal count.
        tied = [r for r in categories["rows"] if r["complaints"] == top_category["complaints"]]
        if len(tied) == 1:
            lines.append(t("summary_categories", category=top_category["category"],
                           count=top_category["complaints"], share=top_category["share"]))
        else:
            lines.append(t("summary_categories_tied", count=len(tied),
                           each=top_category["complaints"], share=top_category["share"]))
    if breaches["total"]:
        most = max(s["count"] for s in breaches["by_step"])
        steps = [s["step"] for s in breaches["by_step"] if s["count"] == most]
        lines.append(t("summary_breaches", total=breaches["total"], step=joiner.join(steps),
                       count=most))
    return lines


def _movers(t: Messages, locale: str, kind: str, with_target: list[dict[str, Any]],
            department_rows: list[dict[str, Any]],
            trend_rows: list[dict[str, Any]]) -> list[str]:
    """The KPI that moved most against its usual move (see USUAL_MOVE_MIN_CHANGES) if
    any moved more than usual, and, among the KPIs without the history for a usual move
    (new, or back after a gap), the one whose status moved furthest; then the department
    that moved furthest the same way as the first named (unless several moved equally
    far). A KPI on few cases is not a candidate, and a change that prints as ±0 is none."""
    movers = [r for r in with_target if r["previous_value"] is not None and not few_cases(r)
              and not t.kpi_change(r["value"], r["previous_value"], r["unit"]).startswith("±")]
    if not movers:
        return []
    usual = {r["kpi_id"]: usual_move(trend_rows, r["kpi_id"], r["period_start"], kind)
             for r in movers}

    def in_print(row: dict[str, Any], value: float) -> float:
        # A move as the sentence prints it (0.25 pp reads "0.2"), never below the smallest
        # printed step: the ratio is then the one a reader can check from the text.
        scale = CHART_SCALE.get(row["unit"], 1.0)
        step = printed_step(row["unit"]) * scale
        return max(round(value * scale, 0 if row["unit"] == "count" else 1), step)

    def times_usual(row: dict[str, Any]) -> float:
        return in_print(row, abs(row["value"] - row["previous_value"])) / in_print(
            row, usual[row["kpi_id"]])

    def figures(row: dict[str, Any]) -> dict[str, str]:
        return {"kpi": kpi_name(row, locale),
                "change": t.kpi_change(row["value"], row["previous_value"], row["unit"]),
                "value": t.kpi_value(row["value"], row["unit"]),
                "target": t.kpi_value(row["target"], row["unit"])}

    lines, named = [], []
    with_history = [r for r in movers if usual[r["kpi_id"]] is not None]
    if with_history:
        top = max(with_history, key=lambda r: (times_usual(r), -r["display_order"]))
        if times_usual(top) > 1:
            named.append((top, len(lines)))
            scale = CHART_SCALE.get(top["unit"], 1.0)
            lines.append(t(f"summary_change_{kind}", **figures(top),
                           times=t.number(times_usual(top)),
                           usual=t.kpi_change(in_print(top, usual[top["kpi_id"]]) / scale,
                                              0.0, top["unit"]).lstrip("+")))
        else:
            lines.append(t(f"summary_no_unusual_move_{kind}"))
    without_history = [r for r in movers if usual[r["kpi_id"]] is None]
    if without_history:
        before = {r["kpi_id"]: r.get("status") for r in trend_rows
                  if r["period_start"] == _previous_start(movers[0]["period_start"], kind)}

        def status_move(row: dict[str, Any]) -> int:
            now, then = row.get("status"), before.get(row["kpi_id"])
            if now not in STATUS_ORDER or then not in STATUS_ORDER:
                return 0
            return abs(STATUS_ORDER[now] - STATUS_ORDER[then])

        moved = max(without_history, key=lambda r: (status_move(r), -r["display_order"]))
        # No status moved: no sentence rather than a guess.
        if status_move(moved):
            named.append((moved, len(lines)))
            lines.append(t(f"summary_status_change_{kind}", **figures(moved),
                           before=t(f"status_{before[moved['kpi_id']]}"),
                           after=t(f"status_{moved['status']}")))
    if not named:
        return lines
    top, sentence = named[0]
    # The department that moved furthest the same way: where to look first.
    delta = top["value"] - top["previous_value"]
    same_way = [d for d in department_rows
                if d["kpi_id"] == top["kpi_id"] and comparable(d)
                and d["previous_value"] is not None
                and (d["value"] - d["previous_value"]) * delta > 0]
    if same_way:
        furthest = _extremes(t, same_way, max,
                             key=lambda d: abs(d["value"] - d["previous_value"]))
        lead = furthest[0]
        change = t.kpi_change(lead["value"], lead["previous_value"], lead["unit"])
        # Right after the sentence it follows ("that way" is that KPI's way).
        lines.insert(sentence + 1, t("summary_department_move",
                                     department=t.department(lead["dimension_value"]),
                                     change=change) if len(furthest) == 1 else
                     t("summary_department_move_tied", count=len(furthest), change=change))
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


def incomplete(period: Period, data_as_of: datetime) -> bool:
    """A period that ends after the data's as-of moment is not over in the data yet
    (the same rule as `servicepulse kpis`: kpis.completeness)."""
    return data_as_of.date() <= period.end


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
        "incomplete": incomplete(period, data_as_of),
        "incomplete_text": t("period_incomplete", as_of=t.moment(data_as_of))
        if incomplete(period, data_as_of) else None,
        "t": t.section_texts(period.kind),
        "page_of": t("page_of"),  # placeholders become CSS page counters when rendered
    }


ACTION_LIST_LIMIT = 15  # rows per group in the PDF; the app and `actions list` hold them all


def _day(value: Any) -> date | None:
    return value.date() if isinstance(value, datetime) else value


def corrective_actions(t: Messages, actions: dict[str, Any] | None, period: Period,
                       data_as_of: datetime) -> dict[str, Any]:
    """整改跟踪: the slice's actions opened in the period, overdue at the data's as-of day
    (most overdue first), done and awaiting verification, verified in the period and
    reopened in the period."""
    rows = (actions or {}).get("rows", [])
    today = data_as_of.date()

    def in_period(value: Any) -> bool:
        day = _day(value)
        return day is not None and period.start <= day <= period.end

    def late(row: dict[str, Any]) -> int:
        return days_overdue(row["status"], _day(row["due_on"]), today)

    def line(row: dict[str, Any]) -> dict[str, Any]:
        due = _day(row["due_on"])
        return {"action": row["action_id"], "department": t.department(row["department"]),
                "owner": row["owner"] or "–", "problem": problem_in(row, t.locale),
                "opened": t.date(_day(row["opened_on"])), "due": t.date(due),
                "status": t(f"action_status_{row['status']}"),
                "late": t("action_days_late", days=late(row)) if late(row) else ""}

    overdue = sorted((r for r in rows if late(r)),
                     key=lambda r: (_day(r["due_on"]), r["action_id"]))
    groups = [
        ("opened", [r for r in rows if in_period(r["opened_on"])]),
        ("overdue", overdue),
        ("awaiting", [r for r in rows if r["status"] == "done"]),
        ("verified", [r for r in rows if r["status"] == "verified"
                      and in_period(r["verified_on"])]),
        ("reopened", [r for r in rows if r["status"] == "reopened"
                      and in_period(r["last_reopened_on"])]),
    ]
    return {
        "total": len(rows),
        "groups": [{"key": key, "title": t(f"actions_group_{key}"), "count": len(members),
                    "rows": [line(r) for r in members[:ACTION_LIST_LIMIT]],
                    "more": t("actions_more", shown=ACTION_LIST_LIMIT, total=len(members))
                    if len(members) > ACTION_LIST_LIMIT else None}
                   for key, members in groups],
    }


def closure(t: Messages, actions: dict[str, Any] | None, department: str | None,
            data_as_of: datetime, top_n: int = 5) -> dict[str, Any]:
    """The month's rectification closure rate and verified share for the slice
    (kpi_corrective_actions), and the departments with the most overdue actions (the
    organisation's report only)."""
    actions = actions or {}
    slice_value = department or "all"
    row = next((r for r in actions.get("closure", [])
                if r["dimension_value"] == slice_value
                and r["dimension"] == ("department" if department else "organisation")), None)
    today = data_as_of.date()
    overdue: dict[str, int] = {}
    for action in actions.get("rows", []):
        if days_overdue(action["status"], _day(action["due_on"]), today):
            overdue[action["department"]] = overdue.get(action["department"], 0) + 1
    most = sorted(overdue.items(), key=lambda item: (-item[1], item[0]))[:top_n]
    return {
        "due": row["actions_due"] if row else 0,
        "closure_rate": t.kpi_value(row["closure_rate"], "fraction") if row else "–",
        "closed": t("actions_closed_of_due", closed=row["actions_done_by_due"],
                    due=row["actions_due"]) if row else "",
        "verified_share": t.kpi_value(row["verified_share"], "fraction")
        if row and row["verified_share"] is not None else "–",
        "verified": t("actions_verified_of_closed", verified=row["actions_verified"],
                      closed=row["actions_done"]) if row else "",
        "most_overdue": [] if department else [
            {"department": t.department(name), "count": count} for name, count in most],
    }
