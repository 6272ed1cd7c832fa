"""Publishing: render a report (weekly: an ISO week; monthly: a month) for every audience
and e-mail each recipient their slice, once.

It sits above the two packages it joins: reports/ builds and renders (pure builders,
Jinja2, WeasyPrint) and knows nothing of recipients; delivery/ sends, ledgers, archives
and alerts and knows nothing of KPIs.

A report is published in three steps, so that several workers can render and send its
audiences at once (the report DAGs map one task over the audiences; docs/reports.md):

- ``plan_audiences``: one small work item per audience, a (locale, department or the
  whole organisation) slice, with the e-mail addresses of its recipients;
- ``publish_audience``: one item: the slice's mart rows read (the warehouse open for
  that only), its PDF and workbook rendered with no connection open, its recipients'
  e-mails delivered through the send ledger (delivery.ledger: each once, however many
  workers try);
- ``finish_publishing``: after every item: the archive pruned and its index rewritten,
  one alert for whatever needs attention, and the outcome raised as delivery does.

``render_and_deliver`` runs the three in one process (tests; the command line through
pipeline.publish_report), the items one after another (``publish_each``)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from servicepulse.delivery.deliver import (
    DeliveryFailed,
    DeliveryIncomplete,
    DeliveryResult,
    Envelope,
    Outcome,
    conclude_delivery,
    deliver,
    delivery_alert,
    prune_archive,
    send_each,
    tell_the_data_team,
)
from servicepulse.delivery.ledger import ledger_connection, ledger_rows, new_token
from servicepulse.delivery.outbox import Attachment, InlineImage
from servicepulse.errors import PermanentError
from servicepulse.filenames import safe_name
from servicepulse.files import write_whole
from servicepulse.kpis import ORGANISATION, Period, PeriodError, kpi_table
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
    inputs = inputs or report_inputs(settings, warehouse, period, department)
    return render_from_inputs(period, locale, department, out_dir, inputs)


def render_from_inputs(period: Period, locale: str, department: str | None, out_dir: Path,
                       inputs: dict) -> tuple[Path, dict]:
    """render_report from the slice's mart rows already read: no warehouse needed."""
    report = report_name(period)
    build = REPORTS[period.kind][1]
    context = build(period, locale, department, **inputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / report_filename(report, period, locale, department)
    write_whole(path, render_pdf(report, context))
    write_whole(workbook_path(path), report_workbook(period, locale, department, **inputs))
    return path, context


def workbook_path(pdf_path: Path) -> Path:
    """The report's workbook: the PDF's name with .xlsx."""
    return pdf_path.with_suffix(".xlsx")


def report_folder(settings: Settings, period: Period) -> Path:
    return settings.output_path / "reports" / report_name(period) / period.label


def plan_audiences(settings: Settings, period: Period, only_recipient: str | None = None,
                   resend_reason: str | None = None) -> list[dict[str, Any]]:
    """The work of publishing ``period``: one item per audience, small and JSON-ready
    (an Airflow XCom): report, period, locale, department (None: the organisation),
    the e-mail addresses of its recipients, and the re-send reason.

    Both locales for the whole organisation (the archive has them, read or not) plus
    every recipient's own slice. ``only_recipient`` (with ``resend_reason``: send that
    one person the report again, deliberately; the ledger records it as a re-send with
    the reason): that recipient's audience alone."""
    report = report_name(period)
    configured = recipients_of(settings, report)
    chosen = [r for r in configured
              if only_recipient is None or str(r.email) == only_recipient]
    if only_recipient and not chosen:
        raise ConfigError(f"{only_recipient} is not a recipient of the {report} report "
                          f"(delivery.{report} in the settings)")
    audiences = {(r.locale, r.department) for r in chosen}
    if only_recipient is None:
        audiences |= {(locale, None) for locale in LOCALES}
    return [{"report": report, "period": period.label, "locale": locale,
             "department": department,
             "recipients": [str(r.email) for r in chosen
                            if (r.locale, r.department) == (locale, department)],
             "resend_reason": resend_reason}
            for locale, department in sorted(audiences, key=lambda a: (a[1] or "", a[0]))]


def check_marts_cover(settings: Settings, warehouse: Warehouse, period: Period,
                      items: list[dict[str, Any]]) -> None:
    """Raise PeriodError unless the KPI marts hold ``period`` for every slice the items
    render (checked once, before any audience is rendered or sent)."""
    frame = warehouse.fetch_frame(
        f"select distinct dimension, dimension_value from {kpi_table(settings, period.kind)} "
        "where period_start = ? and dimension in (?, 'department')",
        [period.start, ORGANISATION[0]])
    held = set(zip(frame["dimension"], frame["dimension_value"], strict=True))
    for department in sorted({item["department"] or "" for item in items}):
        if (("department", department) if department else ORGANISATION) not in held:
            raise PeriodError(f"no KPI rows for {period.label}"
                              + (f" and department {department!r}" if department else "")
                              + f": the marts do not cover that {period.kind} "
                                "(run the pipeline first)")


def publish_audience(settings: Settings, item: dict[str, Any], run_id: str | None = None,
                     send: bool = True) -> dict[str, Any]:
    """One work item of plan_audiences: render the audience's report and deliver its
    recipients' e-mails (each once, see delivery.ledger). The report DAG's mapped task
    (pipeline.render_and_send) and render_and_deliver's loop both call this.

    The warehouse is open only to read the slice's mart rows (read-only: on DuckDB,
    other report tasks read at the same time) and, afterwards, for the ledger's claims
    and outcomes (ledger.LedgerConnection); rendering, the slow part, holds none. Sends
    that need attention are returned, not raised: finish_publishing reports them all
    together. Returns a small summary (JSON-ready): the files, every outcome, timings."""
    period = parse_report_period(item["report"], item["period"])
    report, locale, department = item["report"], item["locale"], item["department"]
    started = time.perf_counter()
    with connected(settings, read_only=True) as warehouse:
        inputs = report_inputs(settings, warehouse, period, department)
    read = time.perf_counter()
    path, context = render_from_inputs(period, locale, department,
                                       report_folder(settings, period), inputs)
    rendered = time.perf_counter()
    log.info("rendered %s", path)
    outcomes: list[Outcome] = []
    recipients = _recipients_by_address(settings, report, item["recipients"])
    envelopes = [report_envelope(recipient, period, context, path)
                 for recipient in recipients] if send else []
    written = time.perf_counter()
    if envelopes:
        with ledger_connection(settings) as ledger_warehouse:
            outcomes = send_each(settings, ledger_warehouse, report, period.label, envelopes,
                                 new_token(run_id),
                                 resend_reason=item.get("resend_reason")).outcomes
    return {"report": report, "period": period.label, "locale": locale,
            "department": department, "pdf": str(path), "workbook": str(workbook_path(path)),
            "outcomes": [asdict(outcome) for outcome in outcomes],
            # read: the mart rows; render: PDF and workbook; write: the e-mails; send:
            # claim, hand over and record each (the ledger's connection open).
            "seconds": {"read": read - started, "render": rendered - read,
                        "write": written - rendered, "send": time.perf_counter() - written}}


def publish_each(settings: Settings, items: list[dict[str, Any]], run_id: str | None = None,
                 send: bool = True) -> list[dict[str, Any]]:
    """publish_audience for every item, one after another in this process (the command
    line; a report DAG renders each audience in a task process of its own). Its memory
    stays flat however many audiences (reports.render shares one font configuration;
    docs/performance.md#publishing)."""
    return [publish_audience(settings, item, run_id=run_id, send=send) for item in items]


def _recipients_by_address(settings: Settings, report: str,
                           addresses: list[str]) -> list[Recipient]:
    """The configured recipients behind a work item's addresses. One removed from the
    settings since the plan is not sent (the settings say who reads the report)."""
    configured = {str(r.email): r for r in recipients_of(settings, report)}
    missing = [address for address in addresses if address not in configured]
    if missing:
        log.warning("%s: no longer recipients of the %s report (delivery.%s), not sent",
                    ", ".join(missing), report, report)
    return [configured[address] for address in addresses if address in configured]


class AudiencesUnfinished(PermanentError):
    """An audience's task failed for good (its own failure alert says why): the report
    is not out to everyone."""

    # The failed task alerted the data team, and finish_publishing's delivery alert
    # names its recipients: failing the run says nothing new.
    data_team_alerted = True


def finish_publishing(settings: Settings, period: Period, items: list[dict[str, Any]],
                      results: list[dict[str, Any]], run_id: str | None = None) -> Published:
    """After every audience's publish_audience (``results``: the summaries of those that
    finished, in any order): prune the archive and rewrite its index, tell the data team
    in one alert what needs attention (conclude_delivery), and raise as delivery does;
    AudiencesUnfinished when an item has no result (its task failed for good), its
    recipients' outcomes read from the ledger."""
    report = report_name(period)
    published = Published(delivery=DeliveryResult(report, period.label))
    finished = set()
    for result in results:
        audience = (result["locale"], result["department"])
        finished.add(audience)
        published.reports[audience] = Path(result["pdf"])
        published.delivery.outcomes += [Outcome(**outcome) for outcome in result["outcomes"]]
    unfinished = [item for item in items if (item["locale"], item["department"]) not in finished]
    if unfinished:
        published.delivery.outcomes += _outcomes_in_the_ledger(settings, period, unfinished,
                                                               run_id)
    prune_archive(settings, period.end)
    write_archive_index(settings)  # links output/reports, which pruning never touches
    delivery_problem = None
    try:
        conclude_delivery(settings, published.delivery, new_token(run_id))
    except (DeliveryIncomplete, DeliveryFailed) as problem:
        if not unfinished:
            raise
        delivery_problem = problem
    if unfinished:
        names = ", ".join(f"{item['department'] or 'organisation'} {item['locale']}"
                          for item in unfinished)
        raise AudiencesUnfinished(
            f"{report} {period.label}: {len(unfinished)} of {len(items)} audiences did not "
            f"finish ({names}): their tasks failed (see their logs); "
            f"{published.delivery.summary()} (the ledger keeps what went; a re-run sends "
            "only the rest)") from delivery_problem
    return published


def _outcomes_in_the_ledger(settings: Settings, period: Period, items: list[dict[str, Any]],
                            run_id: str | None) -> list[Outcome]:
    """What the ledger says of the recipients of audiences whose task failed: sent
    before it failed, or what keeps them waiting."""
    report = report_name(period)
    with connected(settings, read_only=True) as warehouse:
        rows = ledger_rows(settings, warehouse, report, period.label)
    this_run = f"{run_id or 'manual'}/"
    outcomes = []
    for item in items:
        for address in item["recipients"]:
            mine = [r for r in rows if r["recipient"] == address and (
                r["claimed_by"].startswith(this_run) if item.get("resend_reason")
                else r["sequence"] == 0)]
            if not mine:
                outcomes.append(Outcome(address, "retry", "not sent: the task of its "
                                        "audience failed before sending it"))
                continue
            row = mine[-1]
            status = {"sending": "in_flight"}.get(row["status"], row["status"])
            if status == "sent" and not row["claimed_by"].startswith(this_run):
                status = "already_sent"
            outcomes.append(Outcome(address, status, row.get("error") or "",
                                    int(row["sequence"]), message_id=row["message_id"]))
    return outcomes


def render_and_deliver(settings: Settings, period: Period, send: bool = True,
                       run_id: str | None = None, only_recipient: str | None = None,
                       resend_reason: str | None = None) -> Published:
    """Publish ``period`` in this process: every audience's report (plan_audiences), one
    personalised e-mail per recipient, each delivered once (see delivery.ledger), then
    finish_publishing. ``send=False``: render and index only."""
    items = plan_audiences(settings, period, only_recipient, resend_reason)
    with connected(settings, read_only=True) as warehouse:
        check_marts_cover(settings, warehouse, period, items)
    results = publish_each(settings, items, run_id=run_id, send=send)
    if not send:
        write_archive_index(settings)
        return Published(reports={(r["locale"], r["department"]): Path(r["pdf"])
                                  for r in results})
    return finish_publishing(settings, period, items, results, run_id=run_id)


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
        images = (InlineImage(CHART_CID, _chart_png(tuple(trend["labels"]), tuple(trend["on"]),
                                                    tuple(trend["measured"]))),)
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


@lru_cache(maxsize=4)
def _chart_png(labels: tuple[str, ...], on_target: tuple[int | None, ...],
               measured: tuple[int | None, ...]) -> bytes:
    """The e-mail's chart, drawn once per audience: every recipient of an audience gets
    the same one, and encoding the PNG was four fifths of writing an e-mail."""
    return on_target_png(list(labels), list(on_target), list(measured))


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
