"""The workbook beside every report PDF and the offline index of published reports,
from the known-answer marts.

The workbook's figures are checked against `servicepulse kpis --format json` for the
same period and slice (the command line, as a script would call it), its breaches
against the mart, and its bytes against a second render. The index is checked by
following its links."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import UTC
from html.parser import HTMLParser
from pathlib import Path

import pytest
from openpyxl import load_workbook

from servicepulse.cli import main
from servicepulse.filenames import safe_name
from servicepulse.kpis import Period, plain_records
from servicepulse.publishing import render_and_deliver, report_filename, workbook_path
from servicepulse.reports import sections
from servicepulse.reports.archive_index import (
    parse_report_filename,
    published_files,
    write_archive_index,
)
from servicepulse.reports.data import report_inputs
from servicepulse.reports.i18n import Messages
from servicepulse.reports.workbook import report_workbook
from servicepulse.settings import LOCALES
from servicepulse.warehouse import connected
from tests.conftest import settings_for

WEEK, MONTH = Period.parse("2026-W47"), Period.parse("2026-11")
WEEK_BEFORE = WEEK.previous()
# The PDF's breach list is cut at this many rows; the workbook lists every breach.
BREACH_LIST_LIMIT = 1


@pytest.fixture(scope="module")
def published(tmp_path_factory, copy_of_known_answers):
    """Two weeks and a month published, as the report DAGs do. Archived PDFs are kept
    one day past the newest period, so publishing W47 prunes W46's archive folder."""
    settings = copy_of_known_answers(tmp_path_factory.mktemp("workbook"), **{
        "reports.breach_list_limit": BREACH_LIST_LIMIT,
        "delivery.archive_retention_days": 1})
    results = {period: render_and_deliver(settings, period)
               for period in (WEEK_BEFORE, WEEK, MONTH)}
    return settings, results


def _workbook(published, period: Period, locale: str, department: str | None):
    results = published[1]
    path = workbook_path(results[period].reports[(locale, department)])
    assert path.is_file(), f"no workbook beside {path.with_suffix('.pdf').name}"
    return load_workbook(path)


def _records(sheet) -> list[dict]:
    """A sheet's rows as dicts keyed by its header row, each value with its cell."""
    header, *rows = list(sheet.iter_rows())
    names = [cell.value for cell in header]
    return [dict(zip(names, row)) for row in rows]


def same(cell_value, expected) -> bool:
    """A number as a spreadsheet holds it: openpyxl writes 16 significant digits
    ("%.16g") and Excel computes with 15, so a mart double is equal to that precision
    (the last binary digit may differ); text and empty cells exactly."""
    if isinstance(expected, float) and isinstance(cell_value, (int, float)):
        return cell_value == pytest.approx(expected, rel=1e-15, abs=0)
    return cell_value == expected


def _cli_kpis(settings, capsys, *arguments: str) -> dict:
    assert main(["kpis", "--config", str(settings.config_file), "--format", "json",
                 *arguments]) == 0
    return json.loads(capsys.readouterr().out)


AUDIENCES = [(WEEK, "en", None), (WEEK, "zh-CN", None), (WEEK, "zh-CN", "d_a"),
             (MONTH, "en", None), (MONTH, "zh-CN", "d_b")]


@pytest.mark.parametrize("period,locale,department", AUDIENCES,
                         ids=[f"{p.label}-{loc}-{d or 'all'}" for p, loc, d in AUDIENCES])
def test_every_kpi_in_the_workbook_equals_the_command_line(published, capsys, period,
                                                           locale, department):
    settings = published[0]
    expected = _cli_kpis(settings, capsys, "--period", period.label,
                         *(["--department", department] if department else []))["kpis"]
    t = Messages(locale)
    rows = _records(_workbook(published, period, locale, department)[
        t("workbook_sheet_kpis")])
    by_id = {row[t("workbook_col_kpi_id")].value: row for row in rows}
    assert len(by_id) == len(rows) and set(by_id) == set(expected)
    for kpi_id, kpi in expected.items():
        row = by_id[kpi_id]

        def cell(key: str, row=row):
            return row[t(key)]

        assert same(cell("workbook_col_value").value, kpi["value"]), kpi_id
        assert same(cell("col_target").value, kpi["target"]), kpi_id
        assert same(cell("workbook_col_previous").value, kpi["previous"]), kpi_id
        assert same(cell("workbook_col_numerator").value, kpi["numerator"]), kpi_id
        assert same(cell("workbook_col_denominator").value, kpi["denominator"]), kpi_id
        assert cell("col_not_measured_reason").value == kpi.get("reason"), kpi_id
        assert cell("workbook_col_unit").value == t(f"workbook_unit_{kpi['unit']}")
        status = (t("status_not_measured") if kpi["status"] == "not_measured"
                  else sections.status_label(t, kpi["status"], kpi["value"]))
        assert cell("col_status").value == status, kpi_id
        change = cell("workbook_col_change").value
        if kpi["value"] is None or kpi["previous"] is None:
            assert change is None
        else:
            assert change == pytest.approx(kpi["value"] - kpi["previous"], abs=1e-12)
        # Typed cells: a rate is a fraction displayed as percent; the period a date.
        if kpi["value"] is not None:
            assert isinstance(cell("workbook_col_value").value, (int, float))
            assert ("%" in cell("workbook_col_value").number_format) == \
                (kpi["unit"] == "fraction"), kpi_id
        assert cell("workbook_col_period_start").is_date
        assert cell("workbook_col_period_start").value.date() == period.start


def test_department_sheet_is_every_department_and_kpi_as_the_command_line_has_them(
        published, capsys):
    settings = published[0]
    slices = _cli_kpis(settings, capsys, "--period", WEEK.label, "--by", "department")["slices"]
    t = Messages("en")
    book = _workbook(published, WEEK, "en", None)
    rows = _records(book[t("workbook_sheet_departments")])
    kpis_of: dict[str, set[str]] = {}
    for row in rows:
        code = row[t("workbook_col_department_code")].value
        kpi_id = row[t("workbook_col_kpi_id")].value
        kpis_of.setdefault(code, set()).add(kpi_id)
        expected = slices[code][kpi_id]
        assert row[t("col_department")].value == t.department(code)
        for column, key in (("workbook_col_value", "value"), ("col_target", "target"),
                            ("workbook_col_previous", "previous"),
                            ("workbook_col_numerator", "numerator"),
                            ("workbook_col_denominator", "denominator")):
            assert same(row[t(column)].value, expected[key]), (code, kpi_id, key)
    # Long format: one row per department and KPI, every department, the same KPIs each.
    assert len(rows) == sum(len(kpis) for kpis in kpis_of.values())
    assert set(kpis_of) == set(slices)
    assert len({frozenset(kpis) for kpis in kpis_of.values()}) == 1


def test_a_department_workbook_names_no_other_department(published):
    t = Messages("zh-CN")
    book = _workbook(published, WEEK, "zh-CN", "d_a")
    assert t("workbook_sheet_departments") not in book.sheetnames
    breaches = _records(book[t("workbook_sheet_breaches")])
    assert breaches and {row[t("col_department")].value for row in breaches} == \
        {t.department("d_a")}


def test_breach_sheet_lists_every_breach_with_typed_moments(published):
    settings = published[0]
    marts = settings.warehouse.schema("marts")
    with connected(settings, read_only=True) as warehouse:
        mart = plain_records(warehouse.fetch_frame(
            f'select complaint_id, step, received_at_local, due_at_local, minutes_late '
            f'from "{marts}"."fct_complaint_step_breaches" where anchored_week_start = ?',
            [WEEK.start]))
    assert len(mart) > BREACH_LIST_LIMIT, "the known answers need more breaches than the PDF lists"
    for locale in LOCALES:
        t = Messages(locale)
        rows = _records(_workbook(published, WEEK, locale, None)[t("workbook_sheet_breaches")])
        zone = settings.reporting_timezone
        received = t("workbook_local_time", column=t("col_received"), zone=zone)
        due = t("workbook_local_time", column=t("col_due"), zone=zone)
        assert sorted((r[t("col_complaint")].value, r[t("col_step")].value,
                       r[received].value, r[due].value,
                       r[t("workbook_col_minutes_late")].value) for r in rows) == \
            sorted((b["complaint_id"], t(f"step_{b['step']}"), b["received_at_local"],
                    b["due_at_local"], b["minutes_late"]) for b in mart)
        assert all(r[received].is_date for r in rows)


def test_backlog_sheet_has_the_age_buckets_then_the_total(published, capsys):
    settings = published[0]
    expected = _cli_kpis(settings, capsys, "--period", WEEK.label)["kpis"]
    t = Messages("en")
    rows = _records(_workbook(published, WEEK, "en", None)[t("workbook_sheet_backlog")])
    ids = [row[t("workbook_col_kpi_id")].value for row in rows]
    assert ids == [*sections.BACKLOG_BUCKETS, "BACKLOG"]
    for row, kpi_id in zip(rows, ids):
        assert same(row[t("col_count")].value, expected[kpi_id]["value"])
        assert same(row[t("workbook_col_previous")].value, expected[kpi_id]["previous"])
    assert rows[-1][t("col_bucket")].value == t("label_total")


def test_open_items_sheet_is_the_reports_oldest_open_items_with_who_holds_them(published):
    from servicepulse.reports.data import data_as_of, oldest_open_items
    from servicepulse.warehouse import connected

    settings = published[0]
    # The organisation's report in English, department d_a's in Chinese (its recipient's).
    for locale, department in (("en", None), ("zh-CN", "d_a")):
        t = Messages(locale)
        with connected(settings) as warehouse:
            expected = oldest_open_items(settings, warehouse, WEEK, department,
                                         data_as_of(settings, warehouse),
                                         settings.reports.top_n)
        rows = _records(_workbook(published, WEEK, locale, department)[
            t("workbook_sheet_open_items")])
        assert expected
        assert [(r[t("col_item")].value, r[t("col_owner")].value) for r in rows] == \
            [(item["item_id"], item["agent_id"]) for item in expected]
        assert all(isinstance(r[t("workbook_col_age_days")].value, float) for r in rows)


@pytest.mark.parametrize("locale", LOCALES)
def test_sheets_are_named_and_laid_out_for_a_spreadsheet_user(published, locale):
    t = Messages(locale)
    book = _workbook(published, WEEK, locale, None)
    tables = [t(f"workbook_sheet_{key}")
              for key in ("kpis", "departments", "breaches", "backlog", "open_items")]
    assert book.sheetnames == [*tables, t("workbook_sheet_about")]
    for name in tables:
        sheet = book[name]
        assert sheet.freeze_panes.endswith("2")  # the header row stays in view
        assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, sheet.max_column).column_letter}" \
                                        f"{sheet.max_row}"
        assert all(sheet.cell(1, c).font.bold for c in range(1, sheet.max_column + 1))
        assert all((sheet.column_dimensions[sheet.cell(1, c).column_letter].width or 0) >= 8
                   for c in range(1, sheet.max_column + 1))
    about = {row[0].value: row[1] for row in book[t("workbook_sheet_about")].iter_rows()}
    assert about[t("workbook_about_period")].value == WEEK.label
    assert about[t("workbook_col_period_start")].value.date() == WEEK.start
    assert about[t("workbook_about_time_zone")].value == published[0].reporting_timezone


def test_the_same_rows_give_the_same_bytes_dated_by_the_data(published):
    settings, results = published
    published_bytes = workbook_path(results[WEEK].reports[("en", None)]).read_bytes()
    with connected(settings, read_only=True) as warehouse:
        inputs = report_inputs(settings, warehouse, WEEK, None)
    first = report_workbook(WEEK, "en", None, **inputs)
    assert first == report_workbook(WEEK, "en", None, **inputs) == published_bytes
    # Not the clock: every zip entry and the document properties carry the data's
    # as-of moment (two renders within the zip format's 2-second resolution would
    # match even if they carried the time of writing).
    as_of = inputs["data_as_of"]
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {entry.date_time for entry in archive.infolist()} == \
            {as_of.replace(tzinfo=None).timetuple()[:6]}
    properties = load_workbook(io.BytesIO(first)).properties
    as_of_utc = as_of.astimezone(UTC).replace(tzinfo=None)
    assert properties.created == properties.modified == as_of_utc


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "href" in attributes:
            self.hrefs.append(attributes["href"])
        if "src" in attributes or tag in ("link", "script", "img", "iframe"):
            self.sources.append(tag)


def test_archive_index_links_every_published_file_newest_period_first(published):
    settings, _ = published
    index = settings.output_path / "archive" / "index.html"
    html = index.read_text(encoding="utf-8")
    links = _Links()
    links.feed(html)
    files = {link for link in links.hrefs if not link.startswith("#")}
    published_now = {path for path in (settings.output_path / "reports").rglob("*")
                     if path.suffix in (".pdf", ".xlsx")}
    assert {(index.parent / link).resolve() for link in files} == \
        {path.resolve() for path in published_now}
    assert all((index.parent / link).is_file() for link in files)
    # W46's archived PDFs were pruned when W47 was published; its links still work.
    assert not (settings.output_path / "archive" / "weekly" / WEEK_BEFORE.label).exists()
    assert any(WEEK_BEFORE.label in link for link in files)
    assert html.index(f">{WEEK.label} ") < html.index(f">{WEEK_BEFORE.label} ")
    for locale in LOCALES:  # bilingual headings
        t = Messages(locale)
        assert t("archive_title") in html and t("report_title_weekly") in html
        assert t("report_title_monthly") in html
    # Offline: nothing fetched, nothing run.
    assert not links.sources
    assert not re.search(r"https?://|<script|@import|url\(", html, re.IGNORECASE)


def test_archive_index_lists_only_what_exists(tmp_path):
    settings = settings_for(tmp_path, tmp_path / "sources")
    reports = settings.output_path / "reports"
    older, newer = Period.parse("2026-W46"), Period.parse("2026-W47")
    expected = []
    for period, department, locale, with_workbook in (
            (newer, None, "zh-CN", True), (newer, "华东 / 服务部", "en", False),
            (older, None, "en", True)):
        pdf = reports / "weekly" / period.label / report_filename("weekly", period, locale,
                                                                  department)
        pdf.parent.mkdir(parents=True, exist_ok=True)
        pdf.write_bytes(b"%PDF")
        if with_workbook:
            workbook_path(pdf).write_bytes(b"PK")
        expected.append((period.label, department and safe_name(department), locale,
                         with_workbook))
    (reports / "weekly" / newer.label / "notes.txt").write_text("not a report")
    (reports / "weekly" / "drafts").mkdir()
    found = [(f.period.label, f.scope, f.locale, f.workbook is not None)
             for f in published_files(settings)]
    assert found == expected
    index = write_archive_index(settings)
    assert "notes.txt" not in index.read_text(encoding="utf-8")
    assert index.read_text(encoding="utf-8").count("<td>–</td>") == 1  # the missing workbook

    for stale in (reports / "weekly" / older.label).iterdir():
        stale.unlink()
    (reports / "weekly" / older.label).rmdir()
    html = write_archive_index(settings).read_text(encoding="utf-8")
    assert older.label not in html and newer.label in html
    assert not list(index.parent.glob(".*.tmp"))


@pytest.mark.parametrize("department", [None, "d_a", "north-east", "all-en", "华东 / 服务部"])
@pytest.mark.parametrize("locale", LOCALES)
def test_report_file_names_parse_back_to_scope_and_locale(department, locale):
    for report, period in (("weekly", WEEK), ("monthly", MONTH)):
        name = report_filename(report, period, locale, department)
        assert parse_report_filename(name, report, period.label) == \
            (department and safe_name(department), locale)
    assert parse_report_filename("notes.pdf", "weekly", WEEK.label) is None
    assert parse_report_filename(Path(report_filename("weekly", WEEK, locale, department))
                                 .with_suffix(".xlsx").name, "weekly", WEEK.label) is None
