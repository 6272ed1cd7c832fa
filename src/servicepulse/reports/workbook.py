"""The report's figures as a spreadsheet (.xlsx), written beside every PDF: a pure
function of the same mart rows the report's builder gets, so the workbook and the PDF
never disagree.

The PDF rounds and words its figures; the workbook keeps them as the marts hold them
(typed numbers, unrounded, rates as fractions shown as percentages, durations in the
KPI's own unit), so a reader can filter, sort and sum without re-typing anything and
every value equals ``servicepulse kpis --format json`` for the same period and slice.

Sheets: KPIs (the slice's KPIs of the period), Departments (the organisation's report
only: a department's report names no other department), Breaches (every complaint step
that missed its deadline, not only the PDF's first ``breach_list_limit``), Backlog (the
open items by age) and About (period, scope, time zone, the data's as-of moment).

The same rows give the same bytes: openpyxl stamps the document properties and every
zip entry with the current time, so both are set to the data's as-of moment instead
(as the PDF's dates are) and a re-published period does not look changed to the send
ledger when the workbook is attached.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from servicepulse.kpis import Period
from servicepulse.reports import sections
from servicepulse.reports.i18n import Messages

REPORT_OF_KIND = {"week": "weekly", "month": "monthly"}

# Display formats by KPI unit: the cell keeps the mart's full value, the format only
# decides how it reads. A unit without an entry (a new one in the KPI seed) reads as a
# number with one decimal.
VALUE_FORMATS = {"fraction": "0.0%", "count": "#,##0", "seconds": "#,##0",
                 "minutes": "#,##0.0"}
DEFAULT_VALUE_FORMAT = "#,##0.0"
# A change carries its sign; a rate's change is a difference of fractions (shown as
# percent, i.e. percentage points), so that change = value − previous in every row.
CHANGE_FORMATS = {"fraction": "+0.0%;-0.0%;0.0%", "count": "+#,##0;-#,##0;0",
                  "seconds": "+#,##0;-#,##0;0"}
DEFAULT_CHANGE_FORMAT = "+#,##0.0;-#,##0.0;0.0"
DATE_FORMAT = "yyyy-mm-dd"
MOMENT_FORMAT = "yyyy-mm-dd hh:mm"

# Column widths in characters: wide enough for the longest cell (CJK characters count
# twice), never so wide that a free-text reason pushes the figures off the screen.
MIN_WIDTH, MAX_WIDTH = 8, 60
NUMBER_WIDTH, DATE_WIDTH, MOMENT_WIDTH = 12, 11, 17
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", start_color="FFEDEDED", end_color="FFEDEDED")


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict[str, Any]], Any]
    # The cell's number format, from the row (a KPI's unit decides it), or None.
    number_format: Callable[[dict[str, Any]], str | None] = lambda row: None


def report_workbook(period: Period, locale: str, department: str | None,
                    trend_rows: list[dict[str, Any]],
                    department_rows: list[dict[str, Any]],
                    breaches: list[dict[str, Any]],
                    data_as_of: datetime,
                    oldest_open: list[dict[str, Any]] | None = None,
                    **other_inputs: Any) -> bytes:
    """The .xlsx of one report (``period``, ``locale``, the organisation or one
    ``department``) from ``reports.data.report_inputs``. The inputs the workbook does
    not show (agents, categories, quality, actions, the PDF's list limits) are accepted
    so the caller passes the same dict it gives the report's builder."""
    del other_inputs
    t = Messages(locale)
    zone = _zone_name(data_as_of)
    this_period = sorted((r for r in trend_rows if r["period_start"] == period.start),
                         key=lambda r: r["display_order"])
    names = {r["kpi_id"]: sections.kpi_name(r, locale) for r in trend_rows}
    order = {r["kpi_id"]: r["display_order"] for r in trend_rows}

    book = Workbook()
    book.remove(book.active)
    _table(book, t("workbook_sheet_kpis"), _kpi_columns(t, names), this_period,
           frozen_columns=3)
    if department is None:
        # Long, one row per department and KPI, rather than a department × KPI grid:
        # the autofilter then picks one KPI (every department's value, target and
        # status, sortable into a ranking) or one department (all its KPIs); each row
        # keeps its own unit, format, status and not-measured reason, which a grid cell
        # cannot; and a pivot table or a database reads it as it is.
        by_department = sorted(department_rows,
                               key=lambda r: (r["dimension_value"],
                                              order.get(r["kpi_id"], len(order)),
                                              r["kpi_id"]))
        period_start, *kpi_columns = _kpi_columns(t, names)
        _table(book, t("workbook_sheet_departments"),
               [period_start,
                Column(t("workbook_col_department_code"), lambda r: r["dimension_value"]),
                Column(t("col_department"), lambda r: t.department(r["dimension_value"])),
                *kpi_columns], by_department, frozen_columns=5)
    _table(book, t("workbook_sheet_breaches"), _breach_columns(t, zone, data_as_of),
           breaches, frozen_columns=2)
    _table(book, t("workbook_sheet_backlog"), _backlog_columns(t), _backlog_rows(this_period),
           frozen_columns=1)
    if oldest_open:
        # The report's list of the oldest open items, to filter by who holds them.
        _table(book, t("workbook_sheet_open_items"), _open_item_columns(t, zone, data_as_of),
               oldest_open, frozen_columns=1)
    _about(book, t, period, department, data_as_of, zone)

    report = REPORT_OF_KIND[period.kind]
    properties = book.properties
    properties.creator = "ServicePulse"
    properties.lastModifiedBy = None
    properties.title = f"{t(f'report_title_{report}')} {period.label}"
    properties.subject = sections.scope_text(t, department)
    properties.language = locale
    return _fixed_bytes(book, data_as_of)


def _kpi_columns(t: Messages, names: dict[str, str]) -> list[Column]:
    def value_format(row: dict[str, Any]) -> str:
        return VALUE_FORMATS.get(row["unit"], DEFAULT_VALUE_FORMAT)

    def change(row: dict[str, Any]) -> float | None:
        if row["value"] is None or row["previous_value"] is None:
            return None
        return row["value"] - row["previous_value"]

    return [
        Column(t("workbook_col_period_start"), lambda r: r["period_start"],
               lambda r: DATE_FORMAT),
        Column(t("workbook_col_kpi_id"), lambda r: r["kpi_id"]),
        Column(t("col_kpi"), lambda r: names.get(r["kpi_id"], r["kpi_id"])),
        Column(t("workbook_col_value"), lambda r: r["value"], value_format),
        Column(t("workbook_col_unit"), lambda r: _unit_name(t, r["unit"])),
        Column(t("col_target"), lambda r: r["target"], value_format),
        Column(t("col_status"), lambda r: _status(t, r)),
        Column(t("workbook_col_previous"), lambda r: r["previous_value"], value_format),
        Column(t("workbook_col_change"), change,
               lambda r: CHANGE_FORMATS.get(r["unit"], DEFAULT_CHANGE_FORMAT)),
        Column(t("workbook_col_numerator"), lambda r: r["numerator"]),
        Column(t("workbook_col_denominator"), lambda r: r["denominator"]),
        Column(t("col_not_measured_reason"), lambda r: r.get("not_measured_reason")),
    ]


def _breach_columns(t: Messages, zone: str, data_as_of: datetime) -> list[Column]:
    def local(column: str) -> str:
        return t("workbook_local_time", column=t(column), zone=zone)

    def moment(key: str) -> Callable[[dict[str, Any]], datetime | None]:
        return lambda row: _local_moment(row[key], data_as_of)

    return [
        Column(t("col_complaint"), lambda r: r["complaint_id"]),
        Column(t("col_step"), lambda r: t(f"step_{r['step']}")),
        Column(t("workbook_col_kpi_id"), lambda r: r["kpi_id"]),
        Column(t("col_department"), lambda r: t.department(r["department"])),
        Column(t("col_category"), lambda r: t.category(r["complaint_category"])),
        Column(t("workbook_col_severity"), lambda r: r["severity"]),
        Column(local("col_received"), moment("received_at_local"), lambda r: MOMENT_FORMAT),
        Column(local("col_due"), moment("due_at_local"), lambda r: MOMENT_FORMAT),
        Column(local("col_done"), moment("done_at_local"), lambda r: MOMENT_FORMAT),
        Column(t("workbook_col_still_undone"), lambda r: bool(r["is_still_undone"])),
        Column(t("workbook_col_minutes_late"), lambda r: r["minutes_late"],
               lambda r: "#,##0"),
    ]


def _backlog_rows(this_period: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The age buckets in age order, then the total (BACKLOG)."""
    by_id = {r["kpi_id"]: r for r in this_period}
    return [by_id[k] for k in (*sections.BACKLOG_BUCKETS, "BACKLOG") if k in by_id]


def _backlog_columns(t: Messages) -> list[Column]:
    def change(row: dict[str, Any]) -> float | None:
        if row["value"] is None or row["previous_value"] is None:
            return None
        return row["value"] - row["previous_value"]

    def bucket(row: dict[str, Any]) -> str:
        if row["kpi_id"] == "BACKLOG":
            return t("label_total")
        return t(f"backlog_{row['kpi_id'].lower()}")

    return [
        Column(t("col_bucket"), bucket),
        Column(t("workbook_col_kpi_id"), lambda r: r["kpi_id"]),
        Column(t("col_count"), lambda r: r["value"], lambda r: "#,##0"),
        Column(t("workbook_col_previous"), lambda r: r["previous_value"], lambda r: "#,##0"),
        Column(t("workbook_col_change"), change, lambda r: CHANGE_FORMATS["count"]),
        Column(t("col_not_measured_reason"), lambda r: r.get("not_measured_reason")),
    ]


def _open_item_columns(t: Messages, zone: str, data_as_of: datetime) -> list[Column]:
    return [
        Column(t("col_item"), lambda r: r["item_id"]),
        Column(t("col_kind"), lambda r: t(f"backlog_item_{r['item_kind']}")),
        Column(t("col_department"), lambda r: t.department(r["department"])),
        Column(t("col_owner"), lambda r: r["agent_id"]),
        Column(t("col_category"), lambda r: t.category(r["complaint_category"])
               if r["complaint_category"] else None),
        Column(t("workbook_local_time", column=t("col_opened_at"), zone=zone),
               lambda r: _local_moment(r["opened_at_local"], data_as_of),
               lambda r: MOMENT_FORMAT),
        Column(t("workbook_col_age_days"), lambda r: r["age_days"], lambda r: "#,##0.0"),
    ]


def _about(book: Workbook, t: Messages, period: Period, department: str | None,
           data_as_of: datetime, zone: str) -> None:
    """What the figures are: report, period, scope, language, time zone and as-of
    moment, as typed cells, and how to read the numbers."""
    sheet = book.create_sheet(t("workbook_sheet_about"))
    report = REPORT_OF_KIND[period.kind]
    lines: list[tuple[str, Any, str | None]] = [
        (t("workbook_about_report"), t(f"report_title_{report}"), None),
        (t("workbook_about_period"), period.label, None),
        (t("workbook_col_period_start"), period.start, DATE_FORMAT),
        (t("workbook_about_period_end"), period.end, DATE_FORMAT),
        (t("col_scope"), sections.scope_text(t, department), None),
        (t("workbook_about_language"), t("locale_name"), None),
        (t("workbook_about_time_zone"), zone, None),
        (t("workbook_local_time", column=t("workbook_about_data_as_of"), zone=zone),
         _local_moment(data_as_of, data_as_of), MOMENT_FORMAT),
        (t("workbook_about_incomplete"), sections.incomplete(period, data_as_of), None),
        (t("workbook_about_values"), t("workbook_about_values_text"), None),
    ]
    for row, (label, value, number_format) in enumerate(lines, start=1):
        sheet.cell(row=row, column=1, value=label).font = HEADER_FONT
        cell = sheet.cell(row=row, column=2, value=value)
        cell.alignment = Alignment(horizontal="left", vertical="top", wrap_text=True)
        if number_format:
            cell.number_format = number_format
    sheet.column_dimensions["A"].width = min(
        MAX_WIDTH, max(_text_width(label) for label, _, _ in lines) + 2)
    sheet.column_dimensions["B"].width = MAX_WIDTH


def _table(book: Workbook, title: str, columns: Sequence[Column],
           rows: list[dict[str, Any]], frozen_columns: int = 0) -> Worksheet:
    """One header row (bold, frozen, with an autofilter) and one row per record."""
    sheet = book.create_sheet(title)
    widths = [_text_width(column.header) for column in columns]
    for index, column in enumerate(columns, start=1):
        cell = sheet.cell(row=1, column=index, value=column.header)
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
    for row_number, row in enumerate(rows, start=2):
        for index, column in enumerate(columns, start=1):
            value = column.value(row)
            if isinstance(value, str):
                # XML cannot carry control characters: openpyxl would refuse the cell
                # and with it the whole publish, for a stray byte in a source's text.
                value = ILLEGAL_CHARACTERS_RE.sub("", value)
            cell = sheet.cell(row=row_number, column=index, value=value)
            if value is not None and (number_format := column.number_format(row)):
                cell.number_format = number_format
            widths[index - 1] = max(widths[index - 1], _cell_width(value))
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = \
            min(MAX_WIDTH, max(MIN_WIDTH, width + 2))
    last = get_column_letter(len(columns))
    sheet.auto_filter.ref = f"A1:{last}{max(1, len(rows) + 1)}"
    # The header stays in view, and so do the columns that say what a row is about.
    sheet.freeze_panes = f"{get_column_letter(frozen_columns + 1)}2"
    return sheet


def _status(t: Messages, row: dict[str, Any]) -> str:
    """As the report's tiles word it: not measured, nothing to measure, trend only,
    or the red/amber/green verdict."""
    if sections.not_measured(row):
        return t("status_not_measured")
    return sections.status_label(t, row["status"], row["value"])


def _unit_name(t: Messages, unit: str) -> str:
    try:
        return t(f"workbook_unit_{unit}")
    except KeyError:  # a unit newer than the catalogue: its code says enough
        return unit


def _zone_name(moment: datetime) -> str:
    """The reporting time zone as a reader knows it: "Asia/Shanghai" (else "UTC+08:00")."""
    offset = moment.strftime("%z")
    return getattr(moment.tzinfo, "key", None) or f"UTC{offset[:3]}:{offset[3:]}"


def _local_moment(value: datetime | None, data_as_of: datetime) -> datetime | None:
    """A moment as local wall time in the reporting zone: a spreadsheet cell has no
    time zone (the header names it), so an aware value is converted and made naive."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(data_as_of.tzinfo)
    return value.replace(tzinfo=None)


def _cell_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return MOMENT_WIDTH
    if isinstance(value, date):
        return DATE_WIDTH
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return NUMBER_WIDTH
    return _text_width(str(value))


def _text_width(text: str) -> int:
    """Characters as a spreadsheet draws them: full-width (CJK) ones take two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _fixed_bytes(book: Workbook, data_as_of: datetime) -> bytes:
    """The workbook's bytes, dated with the data's as-of moment instead of the clock.

    Workbook.save stamps docProps/core.xml with the current time and zipfile stamps
    every entry with it; both are rewritten here, the entries kept in openpyxl's order
    and compressed as it does. Core properties are UTC (W3CDTF); zip entry times have no
    zone and carry the local wall time, as a zip tool shows them."""
    as_of_utc = data_as_of.astimezone(UTC).replace(tzinfo=None)
    buffer = io.BytesIO()
    book.save(buffer)
    book.properties.created = book.properties.modified = as_of_utc
    core_xml = _core_properties_xml(book)
    stamp = _local_moment(data_as_of, data_as_of).timetuple()[:6]
    fixed = io.BytesIO()
    with zipfile.ZipFile(buffer) as written, \
            zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as out:
        for entry in written.infolist():
            content = core_xml if entry.filename == "docProps/core.xml" \
                else written.read(entry)
            info = zipfile.ZipInfo(entry.filename, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3      # the same bytes whichever system writes them
            info.external_attr = 0o600 << 16
            out.writestr(info, content)
    return fixed.getvalue()


def _core_properties_xml(book: Workbook) -> bytes:
    from openpyxl.xml.functions import tostring

    return tostring(book.properties.to_tree())
