"""Publishing: render a report (weekly: an ISO week; monthly: a month) for every audience
and e-mail each recipient their slice, once.

It sits above the two packages it joins: reports/ builds and renders (pure builders,
Jinja2, WeasyPrint) and knows nothing of recipients; delivery/ sends, ledgers, archives
and alerts and knows nothing of KPIs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from servicepulse.delivery.deliver import (
    DeliveryResult,
    Envelope,
    deliver,
    delivery_alert,
    prune_archive,
    tell_the_data_team,
)
from servicepulse.delivery.ledger import ledger_rows, new_token
from servicepulse.delivery.outbox import Attachment, InlineImage
from servicepulse.filenames import safe_name
from servicepulse.kpis import Period, PeriodError
from servicepulse.reports import sections
from servicepulse.reports.archive_index import write_archive_index
from servicepulse.reports.data import report_inputs
from servicepulse.reports.email_chart import on_target_png
from servicepulse.reports.i18n import Messages
from servicepulse.reports.monthly import build_monthly_report
from servicepulse.reports.render import render_html, render_pdf
from servicepulse.reports.weekly import build_weekly_report
from servicepulse.reports.workbook import report_workbook
from servicepulse.settings import LOCALES, ConfigError, Recipient, Settings
from servicepulse.warehouse import Warehouse, connected

log = logging.getLogger(__name__)

# The report of each period kind: its name (template folder, ledger, outbox, recipients
# list in delivery settings) and the pure function that builds its template data.
REPORTS = {"week": ("weekly", build_weekly_report), "month": ("monthly", build_monthly_report)}
PERIOD_KINDS = {name: kind for kind, (name, _) in REPORTS.items()}


@dataclass
class Published:
    reports: dict[tuple[str, str | None], Path] = field(default_factory=dict)
    delivery: DeliveryResult | None = None


def report_name(period: Period) -> str:
    if period.kind not in REPORTS:
        raise PeriodError(f"{period.label}: a report covers an ISO week (weekly, e.g. "
                          "2026-W47) or a month (monthly, e.g. 2026-10)")
    return REPORTS[period.kind][0]


def parse_report_period(report: str, label: str) -> Period:
    """``label`` as the period of ``report``, refusing a week for the monthly report."""
    period = Period.parse(label)
    if PERIOD_KINDS[report] != period.kind:
        example = "an ISO week such as 2026-W47" if report == "weekly" else "a month such as 2026-10"
        raise PeriodError(f"the {report} report covers {example}, not {label!r}")
    return period


def recipients_of(settings: Settings, report: str) -> list[Recipient]:
    return list(getattr(settings.delivery, report))


def report_filename(report: str, period: Period, locale: str, department: str | None) -> str:
    scope = safe_name(department) if department else "all"
    return f"servicepulse-{report}-{period.label}-{scope}-{locale}.pdf"


def render_report(settings: Settings, warehouse: Warehouse, period: Period, locale: str,
                  department: str | None, out_dir: Path,
                  inputs: dict | None = None) -> tuple[Path, dict]:
    """The report of ``period`` for one audience, and beside its PDF the same figures
    as a workbook (workbook_path). ``inputs``: the slice's mart rows, when already read
    for another locale."""
    report = report_name(period)
    build = REPORTS[period.kind][1]
    inputs = inputs or report_inputs(settings, warehouse, period, department)
    context = build(period, locale, department, **inputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / report_filename(report, period, locale, department)
    path.write_bytes(render_pdf(report, context))
    workbook_path(path).write_bytes(report_workbook(period, locale, department, **inputs))
    return path, context


def workbook_path(pdf_path: Path) -> Path:
    """The report's workbook: the PDF's name with .xlsx."""
    return pdf_path.with_suffix(".xlsx")


def render_and_deliver(settings: Settings, period: Period, send: bool = True,
                       run_id: str | None = None, only_recipient: str | None = None,
                       resend_reason: str | None = None) -> Published:
    """Both locales for the whole organisation plus every recipient's own slice, then
    one personalised e-mail per recipient, each delivered once (see delivery.ledger).

    ``only_recipient`` with ``resend_reason``: send that one person the report again,
    deliberately; the ledger records it as a re-send with the reason."""
    report = report_name(period)
    configured = recipients_of(settings, report)
    recipients = [r for r in configured
                  if only_recipient is None or str(r.email) == only_recipient]
    if only_recipient and not recipients:
        raise ConfigError(f"{only_recipient} is not a recipient of the {report} report "
                          f"(delivery.{report} in the settings)")
    audiences = {(locale, None) for locale in LOCALES}
    audiences |= {(r.locale, r.department) for r in configured}
    out_dir = settings.output_path / "reports" / report / period.label
    published = Published()
    contexts: dict = {}
    inputs_by_slice: dict = {}  # both locales of a slice show the same rows
    with connected(settings) as warehouse:
        for locale, department in sorted(audiences, key=lambda a: (a[1] or "", a[0])):
            if department not in inputs_by_slice:
                inputs_by_slice[department] = report_inputs(settings, warehouse, period,
                                                            department)
            path, context = render_report(settings, warehouse, period, locale, department,
                                          out_dir, inputs_by_slice[department])
            published.reports[(locale, department)] = path
            contexts[(locale, department)] = context
            log.info("rendered %s", path)
        write_archive_index(settings)  # links output/reports, which pruning never touches
        if not send:
            return published
        envelopes = [report_envelope(recipient, period, contexts[key],
                                     published.reports[key])
                     for recipient in recipients
                     for key in [(recipient.locale, recipient.department)]]
        try:
            published.delivery = deliver(settings, warehouse, report, period.label,
                                         envelopes, run_id=run_id,
                                         resend_reason=resend_reason)
        finally:
            prune_archive(settings, period.end)
    return published


# The e-mail's chart travels inside the message; its Content-ID is fixed, so the same
# report gives the same message.
CHART_CID = "on-target-trend@servicepulse.local"
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def report_envelope(recipient: Recipient, period: Period, context: dict,
                    pdf_path: Path) -> Envelope:
    """The e-mail, phone first: the written summary and the off-target indicators as
    cards, the on-target trend as an inline image, then every headline indicator (HTML
    with inline CSS, and plain text). The recipient's PDF attached; the workbook beside
    it too when the recipient asks (attach_workbook)."""
    report = report_name(period)
    t = Messages(recipient.locale)
    subject = t(f"email_subject_{report}", period=period.label)
    tiles = context.get("tiles") or context["scorecard"]
    off_target = [tile for tile in tiles if tile["status"] == "red"]
    # Near target is neither on target (the summary's count) nor off: named in a line.
    near_target = [tile["name"] for tile in tiles if tile["status"] == "amber"]
    trend = context["on_target_trend"]
    chart = None
    images: tuple[InlineImage, ...] = ()
    if any(trend["measured"]):
        chart = {"cid": CHART_CID, "title": trend["title"], "alt": trend["alt"]}
        images = (InlineImage(CHART_CID, on_target_png(trend["labels"], trend["on"],
                                                       trend["measured"])),)
    workbook = workbook_path(pdf_path)
    also_attached: tuple[Attachment, ...] = ()
    if recipient.attach_workbook:
        if not workbook.exists():
            raise ConfigError(f"{recipient.email} asks for the workbook (attach_workbook), "
                              f"but {workbook} was not written")
        also_attached = (Attachment(workbook.name, workbook.read_bytes(), *XLSX),)
    body = {
        "subject": subject,
        "greeting": t("email_greeting", name=recipient.name),
        "intro": t(f"email_intro_{report}", period=context["period_text"],
                   scope=context["scope"]),
        "summary_title": t("email_summary"),
        "off_target_title": t("email_off_target", count=len(off_target)),
        "none_off_target": t("email_none_off_target"),
        "near_target": t("email_near_target", count=len(near_target),
                         kpis=t("label_joiner").join(near_target)) if near_target else None,
        "all_title": t("email_all_kpis"),
        "footer": t("email_footer"),
        "tiles": tiles,
        "off_target": off_target,
        "chart": chart,
        "attachment_lines": [t("email_workbook_attached")] if also_attached else [],
    }
    html = render_html("_partials", "email.html.j2", {**context, **body})
    text = "\n".join([body["greeting"], body["intro"], "",
                      *[f"- {line}" for line in context["summary"]], "",
                      body["off_target_title"],
                      *[f"- {tile['name']}: {tile['value']} ({tile['status_label']})"
                        for tile in off_target],
                      *([body["near_target"]] if near_target else []), "",
                      body["all_title"],
                      *[f"- {tile['name']}: {tile['value']} ({tile['status_label']})"
                        for tile in tiles],
                      "", *body["attachment_lines"], body["footer"]])
    return Envelope(str(recipient.email), recipient.name, subject, text, html,
                    Attachment(pdf_path.name, pdf_path.read_bytes()), recipient.locale,
                    recipient.department, recipient.role, also_attached=also_attached,
                    inline_images=images)


def delivered(settings: Settings, warehouse: Warehouse, period: Period) -> bool:
    """Every current recipient already has the period's scheduled e-mail (so a nightly
    trigger need not render anything)."""
    report = report_name(period)
    rows = ledger_rows(settings, warehouse, report, period.label)
    sent = {r["recipient"] for r in rows if r["sequence"] == 0 and r["status"] == "sent"}
    return all(str(r.email) in sent for r in recipients_of(settings, report))


def delayed_notice_envelope(recipient: Recipient, period: Period) -> Envelope:
    report = report_name(period)
    t = Messages(recipient.locale)
    context = {"locale": recipient.locale,
               "subject": t(f"delayed_subject_{report}", period=period.label),
               "greeting": t("email_greeting", name=recipient.name),
               "body": t(f"delayed_body_{report}", period=sections.period_text(t, period),
                         scope=sections.scope_text(t, recipient.department))}
    html = render_html("_partials", "delayed.html.j2", context)
    text = "\n".join([context["greeting"], context["body"]])
    return Envelope(str(recipient.email), recipient.name, context["subject"], text, html,
                    None, recipient.locale, recipient.department, recipient.role)


def send_delayed_notice(settings: Settings, period: Period, reason: str,
                        run_id: str | None = None) -> DeliveryResult:
    """Tell each recipient, once per period, that the report is late (and the data team
    why). Recipients who already have the report are not told it is late."""
    report = report_name(period)
    with connected(settings) as warehouse:
        already = {r["recipient"] for r in ledger_rows(settings, warehouse, report,
                                                       period.label)
                   if r["status"] == "sent"}
        waiting = [r for r in recipients_of(settings, report) if str(r.email) not in already]
        result = deliver(settings, warehouse, f"{report}-delayed", period.label,
                         [delayed_notice_envelope(r, period) for r in waiting], run_id=run_id,
                         folder=(report, period.label, "delayed"))
    result.alert = tell_the_data_team(settings, delivery_alert(
        result, [], [], new_token(run_id),
        subject=f"{report} {period.label} is delayed: not ready at its deadline",
        intro=f"{reason}. {result.count('sent')} recipient(s) were told the report is "
              "delayed; it goes out by itself once the interval is re-run and passes."))
    return result
