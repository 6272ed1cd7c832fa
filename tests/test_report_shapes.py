"""Reports that survive real shapes: 200 departments, 40 complaint categories, no agents,
a KPI the sources cannot measure, ties at the bottom, an incomplete period.

The mart rows are made here, without a warehouse, and go through the same builders and
renderer as a published report. Expected figures (sums over the departments and
categories, who is weakest) are computed in this file from those rows."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from datetime import datetime
from functools import cache
from pathlib import Path
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from servicepulse.kpis import Period
from servicepulse.reports import sections
from servicepulse.reports.monthly import build_monthly_report
from servicepulse.reports.render import installed_cjk_font, render_pdf
from servicepulse.reports.weekly import build_weekly_report
from servicepulse.settings import PROJECT_ROOT

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEK, MONTH = Period.parse("2026-W47"), Period.parse("2026-11")
DEPARTMENTS = 200
CATEGORIES = 40
TOP_N, COLUMNS = 10, 5
NOT_MEASURED = "FCR"
REASON = "crm_tickets source has no contacts_to_resolve"
# Real names are long, some without a space to break at.
DEPARTMENT_NAMES = [
    f"Department of Housing Preservation and Development {i:03d}" if i % 3 == 0 else
    f"NYC_DEPARTMENT_OF_ENVIRONMENTAL_PROTECTION_{i:03d}" if i % 3 == 1 else
    f"Economic Development Corporation {i:03d}" for i in range(DEPARTMENTS)]
CATEGORY_NAMES = [f"Noise - Residential / Loud Music-Party {i:02d}" if i % 2 else
                  f"HEAT_HOT_WATER_ENTIRE_BUILDING_{i:02d}" for i in range(CATEGORIES)]
MM = 72 / 25.4  # PDF points per millimetre
PAGE_MARGIN_MM = 15  # base.css: @page margin left and right


@cache
def _definitions() -> list[dict[str, str]]:
    path = PROJECT_ROOT / "dbt_project" / "seeds" / "kpi_definitions.csv"
    with path.open(encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["report_section"] == "headline"]


def _figures(kpi: dict[str, str], index: int) -> tuple[float | None, float | None, float | None]:
    """(numerator, denominator, value) of department ``index`` for one KPI: ratios and
    means read value = numerator / denominator, medians and indices have no numerator,
    counts only a value. Department 7 has no complaints (a rate over nothing)."""
    tickets = 40 + (index * 37) % 400
    kind = kpi["kind"]
    if kpi["kpi_id"] == "CSAT":
        # The three departments 3, 4, 5 tie for weakest at 50 %; the rest are above.
        answered = 20 + 2 * (index % 9)
        share = 0.5 if index in (3, 4, 5) else 0.6 + (index % 30) / 100
        return answered * share, answered, share
    if kpi["kpi_id"].startswith(("CMP_", "STEP_", "CALLBACK")):
        complaints = 0 if index == 7 else 5 + index % 11
        if kpi["kpi_id"] == "CMP_RATE":
            return complaints, tickets, complaints / tickets
        on_time = complaints - index % 3 if complaints else 0
        return on_time, complaints, (on_time / complaints) if complaints else None
    if kind == "ratio":
        done = tickets - (index % 7)
        return done, tickets, done / tickets
    if kind == "mean":
        count = 10 + index % 13
        if kpi["kpi_id"] == "CSI" and index == 11:  # alone at the bottom
            return count * 40, count, 40
        return count * (70 + index % 20), count, 70 + index % 20
    if kind == "count":
        return None, None, float(5 + index % 17)
    # Medians, NPS, weighted scores and indices: no numerator to sum.
    scale = 0.01 if kpi["unit"] == "fraction" else 1
    return None, tickets, (50 + index % 40) * scale


def _status(kpi: dict[str, str], value: float | None) -> str | None:
    if value is None or not kpi["target"]:
        return None
    target = float(kpi["target"])
    good = value >= target if kpi["direction"] == "higher" else value <= target
    return "green" if good else "red"


def _row(kpi: dict[str, str], period_start, dimension_value: str, numerator, denominator,
         value, previous) -> dict:
    measured = kpi["kpi_id"] != NOT_MEASURED
    return {"period_start": period_start, "dimension_value": dimension_value,
            "kpi_id": kpi["kpi_id"], "display_order": int(kpi["display_order"]),
            "name_zh": kpi["name_zh"], "name_en": kpi["name_en"], "unit": kpi["unit"],
            "direction": kpi["direction"], "report_section": "headline",
            "numerator": numerator if measured else None,
            "denominator": denominator if measured else None,
            "value": value if measured else None,
            "target": float(kpi["target"]) if kpi["target"] else None,
            "status": _status(kpi, value) if measured else None,
            "previous_value": previous if measured else None,
            "not_measured_reason": None if measured else REASON}


def _department_rows(period: Period) -> list[dict]:
    rows = []
    for kpi in _definitions():
        for index, name in enumerate(DEPARTMENT_NAMES):
            numerator, denominator, value = _figures(kpi, index)
            previous = None if value is None else value * 1.01
            rows.append(_row(kpi, period.start, name, numerator, denominator, value, previous))
    return rows


def _organisation_rows(period: Period, department_rows: list[dict]) -> list[dict]:
    """The organisation's row of each KPI: counts and ratios summed over the
    departments (what the marts would say), the rest a fixed figure."""
    rows = []
    for start in [period.previous(n).start for n in
                  range(sections.TREND_PERIODS[period.kind] - 1, -1, -1)]:
        for kpi in _definitions():
            own = [r for r in department_rows if r["kpi_id"] == kpi["kpi_id"]]
            if kpi["kind"] == "count":
                numerator = denominator = None
                value = sum(r["value"] for r in own)
            elif kpi["kind"] in ("ratio", "mean"):
                numerator = sum(r["numerator"] or 0 for r in own)
                denominator = sum(r["denominator"] or 0 for r in own)
                value = numerator / denominator if denominator else None
            else:
                numerator, denominator = None, None
                value = 0.6 if kpi["unit"] == "fraction" else 60.0
            # Older periods a little different, so the trends have a line.
            if value is not None and start != period.start:
                value *= 1 + (period.start - start).days / 3000
            rows.append(_row(kpi, start, "all", numerator, denominator, value,
                             None if value is None else value * 1.01))
    return rows


def _category_rows(period: Period) -> list[dict]:
    rows = []
    for start in (period.previous().start, period.start):
        counts = [3 + (i * 7) % 41 for i in range(CATEGORIES)]
        total = sum(counts)
        for i, (name, complaints) in enumerate(zip(CATEGORY_NAMES, counts)):
            urgent = complaints // (2 + i % 4)
            rows.append({"period_start": start, "complaint_category": name,
                         "complaints": complaints, "high_impact_complaints": urgent,
                         "frequency_share": complaints / total,
                         "impact_share": urgent / complaints,
                         "frequency_threshold": 1 / CATEGORIES, "impact_threshold": 0.3,
                         "is_high_frequency": complaints / total > 1 / CATEGORIES,
                         "is_high_impact": urgent / complaints > 0.3,
                         "priority_rank": 1 if complaints / total > 1 / CATEGORIES
                         and urgent / complaints > 0.3 else 4})
    return rows


def _breaches(period: Period) -> list[dict]:
    """Missed steps with the longest names in the narrow columns of the breach list."""
    received = datetime(period.start.year, period.start.month, period.start.day, 9, 0)
    return [{"complaint_id": f"311-{60000000 + i}", "step": "close", "kpi_id": "CMP_CLOSE_5WD",
             "received_at_local": received, "due_at_local": received.replace(hour=23),
             "done_at_local": None, "is_still_undone": True, "minutes_late": 600.0 + i,
             "department": DEPARTMENT_NAMES[i * 3 + 1], "complaint_category": CATEGORY_NAMES[i],
             "severity": "high"} for i in range(8)]


def _agents(period: Period) -> list[dict]:
    """Agents whose departments have long names (the Chinese weekly report shows them)."""
    rows = []
    for i in range(30):
        for kpi_id in sections.AGENT_KPIS:
            rows.append({"agent_id": f"AGENT_WITH_A_VERY_LONG_IDENTIFIER_{i:04d}",
                         "department": DEPARTMENT_NAMES[i], "kpi_id": kpi_id,
                         "unit": "fraction", "numerator": 9, "denominator": 10, "value": 0.9,
                         "status": "green",
                         "not_measured_reason": REASON if kpi_id == NOT_MEASURED else None})
    del period
    return rows


def _inputs(period: Period, data_as_of: datetime, with_lists: bool = False) -> dict:
    """The report's rows; without agents or breaches (empty sections) unless
    ``with_lists``."""
    department_rows = _department_rows(period)
    return {"trend_rows": _organisation_rows(period, department_rows),
            "department_rows": department_rows,
            "agent_rows": _agents(period) if with_lists else [],  # else agents unknown
            "category_rows": _category_rows(period),
            "breaches": _breaches(period) if with_lists else [], "quality": None,
            "data_as_of": data_as_of, "breach_limit": 50, "top_n": TOP_N,
            "department_columns": COLUMNS}


COMPLETE_WEEK_AS_OF = datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI)
BUILDERS = {"week": build_weekly_report, "month": build_monthly_report}


def _context(period: Period, locale: str, as_of: datetime = COMPLETE_WEEK_AS_OF,
             with_lists: bool = False) -> dict:
    return BUILDERS[period.kind](period, locale, None, **_inputs(period, as_of, with_lists))


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory):
    """The weekly report in both languages and the monthly one in English, rendered."""
    if installed_cjk_font() is None:
        pytest.fail("no CJK font installed: the zh-CN report cannot render (see README)")
    out = tmp_path_factory.mktemp("shapes")
    rendered = {}
    month_as_of = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)
    for key, period, locale, as_of in (
            ("weekly-en", WEEK, "en", COMPLETE_WEEK_AS_OF),
            ("weekly-zh", WEEK, "zh-CN", COMPLETE_WEEK_AS_OF),
            ("monthly-en", MONTH, "en", month_as_of),
            ("monthly-zh-incomplete", MONTH, "zh-CN", datetime(2026, 11, 20, 14, 5,
                                                               tzinfo=SHANGHAI))):
        # The Chinese weekly report lists agents and breaches; the English one has none.
        context = _context(period, locale, as_of, with_lists=key == "weekly-zh")
        path = out / f"{key}.pdf"
        path.write_bytes(render_pdf("weekly" if period.kind == "week" else "monthly", context))
        rendered[key] = (path, context)
    return rendered


def _layout(path: Path) -> list[dict]:
    """Every page of ``path`` as pdftotext -bbox-layout sees it: its size and its lines,
    each a list of words with their boxes (points)."""
    xhtml = subprocess.run(["pdftotext", "-bbox-layout", str(path), "-"], capture_output=True,
                           text=True, check=True).stdout
    root = ElementTree.fromstring(re.sub(r'\sxmlns="[^"]+"', "", xhtml, count=1))
    pages = []
    for page in root.iter("page"):
        lines = [[{"text": word.text or "", **{k: float(word.get(k)) for k in
                                               ("xMin", "yMin", "xMax", "yMax")}}
                  for word in line.iter("word")] for line in page.iter("line")]
        pages.append({"width": float(page.get("width")), "height": float(page.get("height")),
                      "lines": lines})
    return pages


def _text(path: Path) -> str:
    """The text in drawing order: a table cell's lines follow each other."""
    return subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("key", ["weekly-en", "weekly-zh", "monthly-en",
                                 "monthly-zh-incomplete"])
def test_every_word_lies_inside_the_page_margins(pdfs, key):
    """No word beyond the page box, nor in the left or right margin: a 200-department
    table would run off the page; long unbroken names must wrap inside their column."""
    pages = _layout(pdfs[key][0])
    assert len(pages) > 3
    margin = PAGE_MARGIN_MM * MM - 1.0  # a point of rounding
    outside = [(number, word["text"], round(word["xMin"]), round(word["xMax"]))
               for number, page in enumerate(pages, start=1) for line in page["lines"]
               for word in line
               if word["xMin"] < margin or word["xMax"] > page["width"] - margin
               or word["yMin"] < 0 or word["yMax"] > page["height"]]
    assert outside == []


def test_the_check_would_see_a_table_running_off_the_page(tmp_path):
    """The margin check above is not blind: the department table with 40 department
    columns (what the weekly report printed before) puts words past the margin."""
    context = _context(WEEK, "en")
    context["department_table"] = sections.department_table(
        sections.Messages("en"), "en", sections.headline(_inputs(WEEK, COMPLETE_WEEK_AS_OF)[
            "trend_rows"], WEEK), _department_rows(WEEK), columns=40)
    path = tmp_path / "wide.pdf"
    path.write_bytes(render_pdf("weekly", context))
    margin = PAGE_MARGIN_MM * MM - 1.0
    assert any(word["xMax"] > page["width"] - margin
               for page in _layout(path) for line in page["lines"] for word in line)


def test_department_table_top_n_and_others_add_up_to_the_organisation(pdfs):
    path, context = pdfs["weekly-en"]
    table = context["department_table"]
    rows = _department_rows(WEEK)
    # The largest by tickets created (CMP_RATE's denominator), computed here.
    tickets = {r["dimension_value"]: r["denominator"] for r in rows if r["kpi_id"] == "CMP_RATE"}
    largest = sorted(tickets, key=lambda name: (-tickets[name], name))[:COLUMNS]
    assert table["shown"] == largest
    assert len(table["columns"]) == COLUMNS + 2  # the others, the organisation
    by_kpi = {row["kpi_id"]: row for row in table["rows"]}
    for kpi_id in ("RESP_SLA", "CMP_RATE", "CSAT", "CMP_CLOSE_5WD"):
        cells = by_kpi[kpi_id]["cells"]
        numerator = sum(r["numerator"] for r in rows if r["kpi_id"] == kpi_id)
        denominator = sum(r["denominator"] for r in rows if r["kpi_id"] == kpi_id)
        assert sum(c["numerator"] for c in cells[:-1]) == pytest.approx(numerator), kpi_id
        assert sum(c["denominator"] for c in cells[:-1]) == pytest.approx(denominator), kpi_id
        assert cells[-1]["numerator"] == pytest.approx(numerator)
    backlog = by_kpi["BACKLOG"]["cells"]
    total_backlog = sum(r["value"] for r in rows if r["kpi_id"] == "BACKLOG")
    assert sum(c["value"] for c in backlog[:-1]) == total_backlog == backlog[-1]["value"]
    # The printed others column: the backlog of the 195 others, and "—" for a median.
    others_backlog = total_backlog - sum(r["value"] for r in rows if r["kpi_id"] == "BACKLOG"
                                         and r["dimension_value"] in largest)
    assert backlog[-2]["text"] == f"{others_backlog:,.0f}"
    assert by_kpi["FRT"]["cells"][-2]["text"] == "—"
    text = _flat(_text(path))
    assert f"Others ({DEPARTMENTS - COLUMNS} departments)" in text


def test_every_department_is_in_the_csv_attached_to_the_pdf(pdfs):
    """The full department table: one line per department in the PDF's attachment,
    the figures as printed, the reason a KPI is not measured; the appendix names it."""
    path, _ = pdfs["weekly-en"]
    attachments = PdfReader(path).attachments
    assert list(attachments) == ["departments-2026-W47.csv"]
    lines = list(csv.DictReader(io.StringIO(
        attachments["departments-2026-W47.csv"][0].decode("utf-8-sig"))))
    assert sorted(line["Department"] for line in lines) == sorted(DEPARTMENT_NAMES)
    backlog = sum(int(line["Open backlog"].replace(",", "")) for line in lines)
    assert backlog == sum(r["value"] for r in _department_rows(WEEK) if r["kpi_id"] == "BACKLOG")
    fcr = next(d["name_en"] for d in _definitions() if d["kpi_id"] == NOT_MEASURED)
    assert {line[fcr] for line in lines} == {"n/a — not measured"}
    assert {line["Not measured, because"] for line in lines} == {REASON}
    # (The file name may wrap at a hyphen.)
    assert "inthefiledepartments-2026-W47.csv,attachedtothisPDF" in re.sub(
        r"\s", "", _text(path))
    zh = PdfReader(pdfs["weekly-zh"][0]).attachments["departments-2026-W47.csv"][0]
    assert zh.decode("utf-8-sig").startswith("部门,客户满意度指数")


def test_categories_top_n_and_others_add_up_to_the_total(pdfs):
    path, context = pdfs["weekly-en"]
    categories = context["categories"]
    current = [r for r in _category_rows(WEEK) if r["period_start"] == WEEK.start]
    total = sum(r["complaints"] for r in current)
    top = sorted(current, key=lambda r: (-r["complaints"], r["complaint_category"]))[:TOP_N]
    assert [r["category"] for r in categories["rows"]] == [r["complaint_category"] for r in top]
    assert sum(r["count"] for r in categories["rows"]) + categories["others"]["count"] == total
    assert categories["total"]["count"] == total
    others = total - sum(r["complaints"] for r in top)
    text = _flat(_text(path))
    assert f"Others ({CATEGORIES - TOP_N} categories) {others:,}" in text
    assert f"Total {total:,} 100.0%" in text


def test_monthly_ranking_shows_top_n_then_others_and_every_department_in_the_appendix(pdfs):
    path, context = pdfs["monthly-en"]
    ranking = context["ranking"]
    assert len(ranking["rows"]) == TOP_N
    assert ranking["others"]["department"] == f"Others ({DEPARTMENTS - TOP_N} departments)"
    assert len(ranking["appendix"]) == DEPARTMENTS
    # Composite is 50 + (index % 40): five departments share each score, so each place
    # is tied and printed "1=", never split by name.
    composite = [50 + index % 40 for index in range(DEPARTMENTS)]
    best = max(composite)
    assert composite.count(best) == 5
    assert [row["rank"] for row in ranking["rows"][:5]] == ["1="] * 5
    assert ranking["rows"][5]["rank"] == "6="
    text = _flat(_text(path))
    assert "Others (190 departments)" in text


def test_tied_weakest_departments_are_not_named_a_single_weakest_is(pdfs):
    _, context = pdfs["weekly-en"]
    summary = " ".join(context["summary"])
    rows = _department_rows(WEEK)
    csat = [r for r in rows if r["kpi_id"] == "CSAT"]
    lowest = min(r["value"] for r in csat)
    tied = [r["dimension_value"] for r in csat if r["value"] == lowest]
    assert len(tied) == 3
    assert "3 of 200 departments tie for weakest at 50.0%, so none is named" in summary
    assert not any(name in summary for name in tied)
    csi = [r for r in rows if r["kpi_id"] == "CSI"]
    weakest = min(csi, key=lambda r: r["value"])
    assert sum(r["value"] == weakest["value"] for r in csi) == 1
    assert f"the weakest department is {weakest['dimension_value']}" in summary
    # The Chinese summary does the same.
    zh = " ".join(pdfs["weekly-zh"][1]["summary"])
    assert "200 个部门中有 3 个并列最弱" in zh and not any(name in zh for name in tied)


def test_a_not_measured_kpi_prints_na_with_its_reason_and_is_in_no_ranking(pdfs):
    path, context = pdfs["weekly-en"]
    text = _flat(_text(path))
    tile = next(tile for tile in context["tiles"] if tile["kpi_id"] == NOT_MEASURED)
    assert tile["value"] == "n/a — not measured" and tile["status"] == "none"
    assert "n/a — not measured" in text and REASON in text
    name = tile["name"]
    # Counted nowhere: the on-target sentence counts the 21 measured KPIs with targets
    # (computed from the definitions here), and the KPI is named only as not measured.
    with_target = [d for d in _definitions() if d["target"] and d["kpi_id"] != NOT_MEASURED]
    first = context["summary"][0]
    assert f"of {len(with_target)} indicators with a target" in first
    mentions = [line for line in context["summary"] if name in line]
    assert mentions == [next(line for line in context["summary"] if "not measured" in line)]
    zh = _flat(_text(pdfs["weekly-zh"][0]))
    assert "不适用 — 未测量" in zh
    # Never coloured red, never a figure, in the monthly scorecard either.
    scorecard = next(r for r in pdfs["monthly-en"][1]["scorecard"]
                     if r["kpi_id"] == NOT_MEASURED)
    assert scorecard["status"] == "none" and scorecard["status_label"] == "Not measured"


def _line_texts(path: Path) -> list[str]:
    return [" ".join(word["text"] for word in line)
            for page in _layout(path) for line in page["lines"]]


def test_an_empty_section_is_one_line(pdfs):
    lines = _line_texts(pdfs["weekly-en"][0])
    assert "Agents: The sources name no agents, so there is no agent table." in lines
    assert ("Complaint deadline breaches: No complaint step missed its deadline this week."
            in lines)
    # With agents and breaches (the Chinese report) the sections are tables.
    zh = re.sub(r"\s", "", _text(pdfs["weekly-zh"][0]))  # long ids wrap in their cell
    assert "客服人员：" not in zh and "AGENT_WITH_A_VERY_LONG_IDENTIFIER_0029" in zh
    assert "共有8个投诉环节超时" in zh


def test_the_incomplete_period_is_marked_on_every_page_and_in_the_trends(pdfs):
    path, context = pdfs["monthly-zh-incomplete"]
    assert context["incomplete"] is True
    mark = "本期尚未结束：数据截至"
    pages = _layout(path)
    for page in pages:
        assert mark in "".join(word["text"] for line in page["lines"] for word in line)
    assert "2026-11*" in _text(path)
    complete = pdfs["monthly-en"][1]
    assert complete["incomplete"] is False and complete["incomplete_text"] is None
    assert "Incomplete" not in _text(pdfs["monthly-en"][0])


def test_the_combined_rows_never_sum_what_cannot_be_summed():
    """Others of a median or a weighted score is "—"; of rates over nothing, no data."""
    rate = [{"value": 0.5, "numerator": 1, "denominator": 2, "unit": "fraction"},
            {"value": None, "numerator": 0, "denominator": 0, "unit": "fraction"},
            {"value": 0.75, "numerator": 3, "denominator": 4, "unit": "fraction"}]
    assert sections.combined(rate, "fraction")["value"] == pytest.approx(4 / 6)
    median = [{"value": 12.0, "numerator": None, "denominator": 5, "unit": "minutes"}]
    assert sections.combined(median, "minutes") is None
    nothing = [{"value": None, "numerator": 0, "denominator": 0, "unit": "fraction"}]
    assert sections.combined(nothing, "fraction")["value"] is None
    ghost = [{"value": 1.0, "numerator": None, "denominator": None,
              "not_measured_reason": REASON, "unit": "fraction"}]
    assert sections.not_measured(sections.combined(ghost, "fraction"))


def test_data_as_of_is_the_marts_as_of_moment(tmp_path):
    """The report's as-of moment is int_changes_summarised's (tickets and complaints), in
    the reporting zone: one definition, whatever the raw tickets hold (here a newer one,
    and in a warehouse without a ticket source none at all)."""
    from servicepulse.reports.data import data_as_of
    from servicepulse.warehouse import connected
    from tests.conftest import settings_for

    settings = settings_for(tmp_path, tmp_path / "sources")
    (tmp_path / "output").mkdir(exist_ok=True)
    raw, intermediate = (settings.warehouse.schema(name) for name in ("raw", "intermediate"))
    changes = f'"{intermediate}"."int_changes_summarised"'
    with connected(settings) as warehouse:
        warehouse.execute(f'create schema if not exists "{raw}"')
        warehouse.execute(f'create schema if not exists "{intermediate}"')
        warehouse.execute(f'create table "{raw}"."crm_tickets" (updated_at timestamptz)')
        warehouse.execute(f"""insert into "{raw}"."crm_tickets"
                              values (timestamptz '2026-11-21 00:00:00+00')""")
        warehouse.execute(f"create table {changes} (data_as_of_local timestamp)")
        warehouse.execute(f"insert into {changes} values (timestamp '2026-11-20 14:05:30')")
        as_of = data_as_of(settings, warehouse)
    assert as_of == datetime(2026, 11, 20, 14, 5, 30, tzinfo=SHANGHAI)
    assert as_of.utcoffset().total_seconds() == 8 * 3600


def test_a_department_tied_in_the_ranking_says_it_shares_its_place():
    en = sections.Messages("en")
    rows = [{"dimension_value": code, "kpi_id": "COMPOSITE", "value": value,
             "previous_value": None, "unit": "index", "denominator": None}
            for code, value in (("d_a", 80.0), ("d_b", 80.0), ("d_c", 60.0), ("d_d", None))]
    own = sections.department_ranking(en, rows, "d_b")
    # d_a and d_b share first place; d_d has no composite and is not ranked.
    assert own["place_text"] == "Place 1 of 3 departments, shared by 2 departments."
    assert [r["rank"] for r in own["rows"]] == ["1="]
    whole = sections.department_ranking(en, rows, None)
    assert [(r["rank"], r["department"]) for r in whole["rows"]] == [
        ("1=", "d_a"), ("1=", "d_b"), (3, "d_c"), ("–", "d_d")]


def test_audits_show_the_most_audited_departments_and_the_others_add_up(pdfs):
    _, context = pdfs["weekly-en"]
    audits = context["audits"]
    rows = _department_rows(WEEK)
    tps = {r["dimension_value"]: r["denominator"] for r in rows if r["kpi_id"] == "TPS"}
    tds = {r["dimension_value"]: r["denominator"] for r in rows if r["kpi_id"] == "TDS"}
    most = sorted(tps, key=lambda d: (-(tps[d] + tds[d]), d))[:TOP_N]
    assert [line["label"] for line in audits["rows"][1:]] == most
    others = sum(tps.values()) - sum(tps[d] for d in most)
    assert audits["others"]["TPS"]["count"] == f"{others:,}"
    assert audits["others"]["label"] == f"Others ({DEPARTMENTS - TOP_N} departments)"


def test_audits_without_an_audit_source_are_one_line_saying_why():
    en = sections.Messages("en")
    absent = "no audits source is connected"
    rows = [{"kpi_id": kpi_id, "value": None, "denominator": None, "unit": "score",
             "target": 85.0, "status": None, "not_measured_reason": absent}
            for kpi_id in ("TPS", "TDS")]
    assert sections.audit_table(en, rows, [], None)["empty"] == \
        f"n/a — not measured: {absent}"
    nothing = [dict(row, not_measured_reason=None) for row in rows]
    assert sections.audit_table(en, nothing, [], None) is None


# A real export: NYC 311's API extract (500 requests, 8 agencies as departments, 12 hours
# of Sunday 10 December 2023, so ISO week 2023-W49 is not over in the data), onboarded
# with the shipped configuration. Expected figures are counted from the CSV here.
REAL_EXPORT = PROJECT_ROOT.parent / "shared" / "real-data" / "nyc311" / \
    "service_requests_2023-12-10.csv"
REAL_WEEK = Period.parse("2023-W49")


@pytest.fixture(scope="module")
def real_report(tmp_path_factory):
    from datetime import time, timedelta

    from servicepulse.constants import SOURCES
    from servicepulse.load import load_source
    from servicepulse.reports.data import report_inputs
    from servicepulse.settings import load_settings
    from servicepulse.transform import build
    from servicepulse.warehouse import connected
    from tests.test_onboarding_real_exports import _config_with_output

    folder = tmp_path_factory.mktemp("nyc311")
    settings = load_settings(_config_with_output(
        PROJECT_ROOT / "config" / "onboarding" / "nyc311-2023-api.yaml", folder), environ={})
    start = datetime.combine(datetime(2023, 12, 10).date(), time(), settings.tz)
    with connected(settings) as warehouse:
        for source in SOURCES:
            load_source(settings, warehouse, source, start, start + timedelta(days=1))
    build(settings)
    with connected(settings, read_only=True) as warehouse:
        inputs = report_inputs(settings, warehouse, REAL_WEEK, None)
    context = build_weekly_report(REAL_WEEK, "en", None, **{**inputs, "top_n": TOP_N,
                                                            "department_columns": COLUMNS})
    path = folder / "weekly-en.pdf"
    path.write_bytes(render_pdf("weekly", context))
    # The month, in Chinese: December 2023 is not over in the data either.
    month = Period.parse("2023-12")
    with connected(settings, read_only=True) as warehouse:
        month_inputs = report_inputs(settings, warehouse, month, None)
    monthly = build_monthly_report(month, "zh-CN", None, **month_inputs)
    monthly_path = folder / "monthly-zh.pdf"
    monthly_path.write_bytes(render_pdf("monthly", monthly))
    with REAL_EXPORT.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows, context, path, monthly, monthly_path


def test_a_real_export_report_orders_agencies_by_requests_and_marks_the_week_incomplete(
        real_report):
    from collections import Counter

    rows, context, path, _, _ = real_report
    per_agency = Counter(row["agency"] for row in rows)
    largest = sorted(per_agency, key=lambda a: (-per_agency[a], a))[:COLUMNS]
    table = context["department_table"]
    assert table["shown"] == largest
    assert table["columns"][COLUMNS] == f"Others ({len(per_agency) - COLUMNS} departments)"
    # Open at the data's "now", the newest change (no closing time, created before it):
    # top five + others = the organisation.
    newest = max(max(row["resolution_action_updated_date"], row["closed_date"],
                     row["created_date"]) for row in rows)
    open_now = Counter(row["agency"] for row in rows
                       if not row["closed_date"] and row["created_date"] < newest)
    backlog = next(r for r in table["rows"] if r["kpi_id"] == "BACKLOG")["cells"]
    assert [c["value"] for c in backlog[:COLUMNS]] == [open_now[a] for a in largest]
    assert backlog[COLUMNS]["value"] == sum(n for a, n in open_now.items() if a not in largest)
    assert backlog[-1]["value"] == sum(open_now.values())
    # The newest change is 10 December 12:00 New York time; the week ends that night.
    assert newest.startswith("2023-12-10T12:00")
    text = _flat(_text(path))
    assert "Incomplete period: data through 10 Dec 2023 12:00 (UTC-05:00)" in text
    assert context["incomplete"] is True
    # What a 311 export cannot say is n/a with its reason, never 0 % or red.
    frt = next(tile for tile in context["tiles"] if tile["kpi_id"] == "FRT")
    assert frt["value"] == "n/a — not measured" and frt["status"] == "none"
    assert "crm_tickets source has no first_response_at" in text
    assert not any("First response time" in line for line in context["summary"]
                   if "not measured" not in line)
    # No agents, no complaints: one line each.
    lines = _line_texts(path)
    assert "Agents: The sources name no agents, so there is no agent table." in lines
    assert "Complaint categories: No complaints in this period." in lines


def test_a_real_export_report_prints_inside_the_page_margins(real_report):
    _, _, weekly, _, monthly = real_report
    margin = PAGE_MARGIN_MM * MM - 1.0
    for path in (weekly, monthly):
        outside = [(word["text"], round(word["xMin"]), round(word["xMax"]))
                   for page in _layout(path) for line in page["lines"] for word in line
                   if word["xMin"] < margin or word["xMax"] > page["width"] - margin]
        assert outside == [], path.name


def test_a_real_export_monthly_says_why_there_is_no_ranking(real_report):
    """No survey, no response times: no composite score, so the ranking is one line
    with the reason, and the month is marked incomplete on every page."""
    _, _, _, context, path = real_report
    assert context["ranking"]["rows"] == []
    lines = [line.replace(" ", "") for line in _line_texts(path)]
    assert any(line.startswith("部门综合绩效排名：不适用—未测量：") for line in lines)
    for page in _layout(path):
        assert "本期尚未结束：数据截至2023年12月10日" in "".join(
            word["text"] for line in page["lines"] for word in line)
