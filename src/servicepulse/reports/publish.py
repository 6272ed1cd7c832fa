"""Render the weekly report for every audience and e-mail each recipient their slice."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from servicepulse.delivery.outbox import Attachment, build_message, write_to_outbox
from servicepulse.kpis import Period
from servicepulse.reports.data import weekly_inputs
from servicepulse.reports.i18n import Messages
from servicepulse.reports.render import render_html, render_pdf
from servicepulse.reports.weekly import build_weekly_report
from servicepulse.settings import LOCALES, Settings
from servicepulse.warehouse import Warehouse, connected

log = logging.getLogger(__name__)


@dataclass
class Published:
    reports: dict[tuple[str, str | None], Path] = field(default_factory=dict)
    emails: list[Path] = field(default_factory=list)


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


def publish_weekly(settings: Settings, period: Period, send: bool = True) -> Published:
    """Both locales for the whole organisation, plus every recipient's own slice."""
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
    outbox = settings.output_path / "outbox"
    for recipient in settings.delivery.weekly:
        key = (recipient.locale, recipient.department)
        context, pdf_path = contexts[key], published.reports[key]
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
        message = build_message(
            settings.delivery.sender, [(recipient.name, str(recipient.email))], subject, html,
            text, identity=f"weekly|{period.label}|{recipient.email}",
            attachment=Attachment(pdf_path.name, pdf_path.read_bytes()))
        published.emails.append(write_to_outbox(outbox, ("weekly", period.label),
                                                str(recipient.email), message))
    return published
