"""output/archive/index.html: every published report on one offline page.

Each report kind (weekly, monthly), its periods newest first, and per period every
audience's PDF and workbook (scope: organisation or department; locale), linked by
relative path. The page has inline CSS and nothing else: no script, no font, no image,
no link out, so it reads the same on a machine without internet or from a file share.

What it links: the published files under output/reports/<report>/<period>/, not the
content-addressed copies under output/archive/<report>/<period>/<sha256>.pdf. Those
copies are the record of what was delivered (the send ledger names them), hold only
delivered PDFs and no workbook, carry no readable name, and prune_archive deletes their
periods after ``archive_retention_days``; prune_archive never touches output/reports,
so a link here does not break when an archived period is pruned. The page is written
from a scan of what exists, after publishing and pruning, so it never lists a file that
is gone; it is written whole to a temporary file and renamed, so a reader (or a
concurrent publish of the other report) never sees half a page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from servicepulse.files import write_whole
from servicepulse.kpis import Period, PeriodError
from servicepulse.reports import sections
from servicepulse.reports.i18n import Messages
from servicepulse.reports.render import render_html
from servicepulse.settings import LOCALES, Settings

# Report kinds in the order the page lists them, with the period kind each covers.
REPORT_KINDS = (("weekly", "week"), ("monthly", "month"))
ORGANISATION_SCOPE = "all"


@dataclass(frozen=True)
class PublishedFile:
    """One audience's report of one period, as found on disk."""
    report: str
    period: Period
    scope: str | None     # None: the whole organisation; else the department's file name
    locale: str
    pdf: Path
    workbook: Path | None  # None: published before workbooks were written


def parse_report_filename(name: str, report: str, period_label: str
                          ) -> tuple[str | None, str] | None:
    """(department's file name or None for the organisation, locale) of a report file
    named as publishing.report_filename names it
    (servicepulse-<report>-<period>-<scope>-<locale>.pdf); None for any other file."""
    prefix = f"servicepulse-{report}-{period_label}-"
    if not (name.startswith(prefix) and name.endswith(".pdf")):
        return None
    rest = name[len(prefix):-len(".pdf")]
    for locale in LOCALES:
        if rest.endswith(f"-{locale}") and len(rest) > len(locale) + 1:
            scope = rest[:-len(locale) - 1]
            return (None if scope == ORGANISATION_SCOPE else scope), locale
    return None


def published_files(settings: Settings) -> list[PublishedFile]:
    """Every report PDF under output/reports, newest period first within each report
    kind; per period the organisation first, then departments by name, locales in
    the settings' order. Folders and files not named as publishing names them (a
    stray file, a folder that is not a period) are left out."""
    root = settings.output_path / "reports"
    found: list[PublishedFile] = []
    for report, kind in REPORT_KINDS:
        periods = []
        for folder in (root / report).glob("*") if (root / report).is_dir() else ():
            try:
                period = Period.parse(folder.name)
            except PeriodError:
                continue
            if folder.is_dir() and period.kind == kind:
                periods.append((period, folder))
        for period, folder in sorted(periods, key=lambda p: p[0].start, reverse=True):
            in_period = []
            for pdf in folder.glob("*.pdf"):
                parsed = parse_report_filename(pdf.name, report, period.label)
                if parsed is None:
                    continue
                scope, locale = parsed
                workbook = pdf.with_suffix(".xlsx")
                in_period.append(PublishedFile(report, period, scope, locale, pdf,
                                               workbook if workbook.is_file() else None))
            found += sorted(in_period, key=lambda f: (f.scope is not None, f.scope or "",
                                                      LOCALES.index(f.locale)))
    return found


def write_archive_index(settings: Settings) -> Path:
    """Write output/archive/index.html from what is published now; return its path."""
    archive = settings.output_path / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    path = archive / "index.html"
    html = render_html("archive_index", "index.html.j2",
                       _context(published_files(settings), archive))
    write_whole(path, html.encode("utf-8"))
    return path


def _context(files: list[PublishedFile], index_dir: Path) -> dict:
    both = [Messages(locale) for locale in LOCALES]

    def texts(key: str) -> list[dict[str, str]]:
        """A text in every locale, each marked with its language."""
        return [{"lang": t.locale, "text": t(key)} for t in both]

    def scope(file: PublishedFile) -> list[dict[str, str]]:
        return [{"lang": t.locale, "text": sections.scope_text(t, file.scope)} for t in both]

    def link(target: Path) -> str:
        return quote(os.path.relpath(target, index_dir).replace(os.sep, "/"))

    reports = []
    for report, _ in REPORT_KINDS:
        periods: dict[str, dict] = {}
        for file in (f for f in files if f.report == report):
            entry = periods.setdefault(file.period.label, {
                "label": file.period.label,
                "dates": f"{file.period.start.isoformat()} – {file.period.end.isoformat()}",
                "files": []})
            entry["files"].append({
                "scope": scope(file),
                # A language is named in itself: the reader looks for their own.
                "language": Messages(file.locale)("locale_name"),
                "lang": file.locale,
                "pdf": {"href": link(file.pdf), "name": file.pdf.name},
                "workbook": {"href": link(file.workbook), "name": file.workbook.name}
                if file.workbook else None})
        reports.append({"anchor": report, "title": texts(f"report_title_{report}"),
                        "periods": list(periods.values())})
    return {"title": texts("archive_title"), "intro": texts("archive_intro"),
            "nothing_published": texts("archive_none"),
            "columns": {key: texts(f"archive_col_{key}") for key in
                        ("period", "dates", "language", "pdf", "workbook")}
            | {"scope": texts("col_scope")},
            "reports": reports}
