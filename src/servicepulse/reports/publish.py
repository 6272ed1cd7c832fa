"""Render the weekly report for every audience and e-mail each recipient their slice."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from servicepulse.delivery.deliver import DeliveryResult, Envelope, deliver, prune_archive
from servicepulse.delivery.ledger import ledger_rows
from servicepulse.delivery.outbox import Attachment
from servicepulse.kpis import Period
from servicepulse.reports.data import weekly_inputs
from servicepulse.reports.i18n import Messages
from servicepulse.reports.render import render_html, render_pdf
from servicepulse.reports.weekly import build_weekly_report
from servicepulse.settings import LOCALES, ConfigError, Recipient, Settings
from servicepulse.warehouse import Warehouse, connected

log = logging.getLogger(__name__)


@dataclass
class Published:
    reports: dict[tuple[str, str | None], Path] = field(default_factory=dict)
    delivery: DeliveryResult | None = None


def report_filename(report: str, period: Period, locale: str, department: str | None) -> str:
    scope = department or "all"
    return f"servicepulse-{report}-{period.label}-{scope}-{locale}.pdf"


def render_weekly(settings: Settings, warehouse: Warehouse, period: Period, locale: str,
                  department: str | None, out_dir: Path,
                  inputs: dict | None = None) -> tuple[Path, dict]:
    """``inputs``: the slice's mart rows, when already read for another locale."""
    inputs = inputs or weekly_inputs(settings, warehouse, period, department)
    context = build_weekly_report(period, locale, department, **inputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / report_filename("weekly", period, locale, department)
    path.write_bytes(render_pdf("weekly", context))
    return path, context


def publish_weekly(settings: Settings, period: Period, send: bool = True,
                   run_id: str | None = None, only_recipient: str | None = None,
                   resend_reason: str | None = None) -> Published:
    """Both locales for the whole organisation plus every recipient's own slice, then
    one personalised e-mail per recipient, each delivered once (see delivery.ledger).

    ``only_recipient`` with ``resend_reason``: send that one person the report again,
    deliberately; the ledger records it as a re-send with the reason."""
    recipients = [r for r in settings.delivery.weekly
                  if only_recipient is None or str(r.email) == only_recipient]
    if only_recipient and not recipients:
        raise ConfigError(f"{only_recipient} is not a recipient of the weekly report "
                          "(delivery.weekly in the settings)")
    audiences = {(locale, None) for locale in LOCALES}
    audiences |= {(r.locale, r.department) for r in settings.delivery.weekly}
    out_dir = settings.output_path / "reports" / "weekly" / period.label
    published = Published()
    contexts: dict = {}
    inputs_by_slice: dict = {}  # both locales of a slice show the same rows
    with connected(settings) as warehouse:
        for locale, department in sorted(audiences, key=lambda a: (a[1] or "", a[0])):
            if department not in inputs_by_slice:
                inputs_by_slice[department] = weekly_inputs(settings, warehouse, period,
                                                            department)
            path, context = render_weekly(settings, warehouse, period, locale, department,
                                          out_dir, inputs_by_slice[department])
            published.reports[(locale, department)] = path
            contexts[(locale, department)] = context
            log.info("rendered %s", path)
        if not send:
            return published
        envelopes = [weekly_envelope(recipient, period, contexts[key],
                                     published.reports[key])
                     for recipient in recipients
                     for key in [(recipient.locale, recipient.department)]]
        try:
            published.delivery = deliver(settings, warehouse, "weekly", period.label,
                                         envelopes, run_id=run_id,
                                         resend_reason=resend_reason)
        finally:
            prune_archive(settings, period.end)
    return published


def weekly_envelope(recipient: Recipient, period: Period, context: dict,
                    pdf_path: Path) -> Envelope:
    t = Messages(recipient.locale)
    subject = t("email_subject", period=period.label)
    body = {
        "subject": subject,
        "greeting": t("email_greeting", name=recipient.name),
        "intro": t("email_intro", period=context["period_text"], scope=context["scope"]),
        "headline_title": t("email_headline"),
        "footer": t("email_footer"),
    }
    html = render_html("weekly", "email.html.j2", {**context, **body})
    text = "\n".join([body["greeting"], body["intro"], "",
                      *[f"- {tile['name']}: {tile['value']} ({tile['status_label']})"
                        for tile in context["tiles"]],
                      "", *context["summary"]])
    return Envelope(str(recipient.email), recipient.name, subject, text, html,
                    Attachment(pdf_path.name, pdf_path.read_bytes()), recipient.locale,
                    recipient.department, recipient.role)


def weekly_delivered(settings: Settings, warehouse: Warehouse, period: Period) -> bool:
    """Every current recipient already has the period's scheduled e-mail (so a nightly
    trigger need not render anything)."""
    rows = ledger_rows(settings, warehouse, "weekly", period.label)
    sent = {r["recipient"] for r in rows if r["sequence"] == 0 and r["status"] == "sent"}
    return all(str(r.email) in sent for r in settings.delivery.weekly)


def delayed_notice_envelope(recipient: Recipient, period: Period) -> Envelope:
    t = Messages(recipient.locale)
    year, week, _ = period.start.isocalendar()
    scope = t("scope_department", department=t.department(recipient.department)) \
        if recipient.department else t("scope_org")
    period_text = t("period_week", year=year, week=week, start=t.date(period.start),
                    end=t.date(period.end))
    context = {"locale": recipient.locale,
               "subject": t("delayed_subject", period=period.label),
               "greeting": t("email_greeting", name=recipient.name),
               "body": t("delayed_body", period=period_text, scope=scope)}
    html = render_html("weekly", "delayed.html.j2", context)
    text = "\n".join([context["greeting"], context["body"]])
    return Envelope(str(recipient.email), recipient.name, context["subject"], text, html,
                    None, recipient.locale, recipient.department, recipient.role)


def send_delayed_notice(settings: Settings, period: Period, reason: str,
                        run_id: str | None = None) -> DeliveryResult:
    """Tell each recipient, once per period, that the report is late (and the data team
    why). Recipients who already have the report are not told it is late."""
    from servicepulse.delivery.deliver import send_delivery_alert
    from servicepulse.delivery.transport import transport_for

    with connected(settings) as warehouse:
        delivered = {r["recipient"] for r in ledger_rows(settings, warehouse, "weekly",
                                                         period.label)
                     if r["status"] == "sent"}
        waiting = [r for r in settings.delivery.weekly if str(r.email) not in delivered]
        result = deliver(settings, warehouse, "weekly-delayed", period.label,
                         [delayed_notice_envelope(r, period) for r in waiting], run_id=run_id,
                         folder=("weekly", period.label, "delayed"))
    result.alert = send_delivery_alert(
        settings, transport_for(settings), result, [], [],
        subject=f"weekly {period.label} is delayed: not ready at its deadline",
        intro=f"{reason}. {result.count('sent')} recipient(s) were told the report is "
              "delayed; it goes out by itself once the interval is re-run and passes.")
    return result
