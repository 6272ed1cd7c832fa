"""Deliver personalised messages exactly once, archive what went out, and say loudly
what could not go.

For each envelope: archive its PDF (content-addressed), claim the send in the ledger,
hand the message to the transport (retrying temporary failures with backoff), record
the outcome. Whatever did not end as "sent" reaches the data team (delivery.notify) and
is raised:
``DeliveryIncomplete`` (temporary; the task's retries pick it up, the ledger skips
what already went) or ``DeliveryFailed`` (a person must act; retries would not help).

``deliver`` does both; a report whose audiences are sent by separate tasks sends each
with ``send_each`` and concludes once, over all of them, with ``conclude_delivery``
(publishing.finish_publishing).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

from servicepulse.delivery import ledger
from servicepulse.delivery.alert import Alert
from servicepulse.delivery.outbox import Attachment, InlineImage, build_message
from servicepulse.delivery.transport import (
    InDoubtDeliveryError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    Transport,
    transport_for,
)
from servicepulse.errors import PermanentError, RetryableError
from servicepulse.files import write_whole
from servicepulse.kpis import Period, PeriodError
from servicepulse.settings import Settings
from servicepulse.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Envelope:
    """One personalised message: who gets it and what it says."""
    email: str
    name: str
    subject: str
    text: str
    html: str
    attachment: Attachment | None = None   # the report: archived, its hash ledgered
    locale: str | None = None
    department: str | None = None
    role: str | None = None
    also_attached: tuple[Attachment, ...] = ()    # e.g. the report's workbook, on request
    inline_images: tuple[InlineImage, ...] = ()   # shown by the HTML body (cid:)

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (self.subject, self.text, self.html):
            digest.update(part.encode("utf-8") + b"\0")
        if self.attachment:
            digest.update(self.attachment.filename.encode() + b"\0" + self.attachment.content)
        # Added after the ledger began: a message without them hashes as it always did.
        for item in self.also_attached:
            digest.update(b"attached\0" + item.filename.encode() + b"\0" + item.content)
        for image in self.inline_images:
            digest.update(b"inline\0" + image.cid.encode() + b"\0" + image.content)
        return digest.hexdigest()


@dataclass(frozen=True)
class Outcome:
    recipient: str
    status: str  # sent, already_sent, in_flight, failed, retry, in_doubt
    detail: str = ""
    sequence: int = 0
    content_changed: bool = False
    message_id: str | None = None

    @property
    def needs_attention(self) -> bool:
        # in_flight: another worker's send not confirmed within the wait; this run
        # cannot call the delivery done.
        return self.status in ("failed", "retry", "in_doubt", "in_flight")


# Outcomes a later try may mend (a temporary failure, another worker still sending).
RETRYABLE_STATUSES = ("retry", "in_flight")


@dataclass
class DeliveryResult:
    report: str
    period: str
    outcomes: list[Outcome] = field(default_factory=list)
    alert: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def summary(self) -> str:
        statuses = sorted({o.status for o in self.outcomes})
        return ", ".join(f"{self.count(s)} {s}" for s in statuses) or "nothing to send"


class DeliveryIncomplete(RetryableError):
    """Temporary failures remain; a retry of the task will send only those."""


class DeliveryFailed(PermanentError):
    """A recipient was refused for good or a send's outcome is unknown: a person acts."""


def archive_attachment(settings: Settings, report: str, period: str,
                       attachment: Attachment) -> tuple[str, Path]:
    """Keep the delivered PDF under output/archive/<report>/<period>/<sha256>.pdf."""
    sha256 = hashlib.sha256(attachment.content).hexdigest()
    folder = settings.output_path / "archive" / report / period
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sha256}{Path(attachment.filename).suffix}"
    if not path.exists():
        # Two workers archiving the same PDF at once each rename a complete file onto
        # the same content-addressed name.
        write_whole(path, attachment.content)
    return sha256, path


def prune_archive(settings: Settings, newest_period_end: date) -> list[Path]:
    """Drop archived periods that ended more than ``archive_retention_days`` before the
    newest published period (a data date, so pruning does not depend on the clock).
    Folders whose name is not a period are left alone."""
    cutoff = newest_period_end - timedelta(days=settings.delivery.archive_retention_days)
    removed = []
    for period_dir in (settings.output_path / "archive").glob("*/*"):
        try:
            end = Period.parse(period_dir.name).end
        except PeriodError:
            continue
        if end < cutoff:
            shutil.rmtree(period_dir)
            removed.append(period_dir)
    return removed


def deliver(settings: Settings, warehouse: Warehouse, report: str, period: str,
            envelopes: list[Envelope], run_id: str | None = None,
            transport: Transport | None = None, resend_reason: str | None = None,
            folder: tuple[str, ...] | None = None) -> DeliveryResult:
    """Send each envelope once (``resend_reason``: send again, deliberately), then tell
    the data team what needs attention and raise it (see conclude_delivery)."""
    token = ledger.new_token(run_id)
    result = send_each(settings, warehouse, report, period, envelopes, token,
                       transport=transport, resend_reason=resend_reason, folder=folder)
    return conclude_delivery(settings, result, token)


def send_each(settings: Settings, warehouse: Warehouse, report: str, period: str,
              envelopes: list[Envelope], token: str, transport: Transport | None = None,
              resend_reason: str | None = None,
              folder: tuple[str, ...] | None = None) -> DeliveryResult:
    """Send each envelope once and record every outcome; alert and raise nothing (a
    report's audiences are sent by separate tasks, and their outcomes concluded once,
    together: conclude_delivery).

    ``warehouse`` may be a ledger.LedgerConnection: it is then handed back between two
    messages, so that other workers' claims get their turn at a DuckDB file."""
    transport = transport or transport_for(settings)
    ledger.ensure_ledger(settings, warehouse)
    folder = folder or (report, period)
    result = DeliveryResult(report, period)
    for envelope in envelopes:
        outcome = _deliver_one(settings, warehouse, transport, report, period, envelope,
                               token, resend_reason, folder)
        log.log(logging.ERROR if outcome.needs_attention else logging.INFO,
                "%s %s to %s: %s%s", report, period, envelope.email, outcome.status,
                f" ({outcome.detail})" if outcome.detail else "")
        result.outcomes.append(outcome)
        if isinstance(warehouse, ledger.LedgerConnection):
            warehouse.between_messages()
    return result


def conclude_delivery(settings: Settings, result: DeliveryResult, token: str
                      ) -> DeliveryResult:
    """What needs attention (or changed after delivery) reaches the data team in one
    alert; then ``DeliveryIncomplete`` if a retry may mend it, ``DeliveryFailed`` if a
    person must act."""
    problems = [o for o in result.outcomes if o.needs_attention]
    changed = [o for o in result.outcomes if o.content_changed]
    if problems or changed:
        result.alert = tell_the_data_team(settings,
                                          delivery_alert(result, problems, changed, token))
    if any(o.status in RETRYABLE_STATUSES for o in problems):
        raise DeliveryIncomplete(problem_text(result.report, result.period, problems))
    if problems:
        raise DeliveryFailed(problem_text(result.report, result.period, problems))
    return result


def _deliver_one(settings: Settings, warehouse: Warehouse, transport: Transport, report: str,
                 period: str, envelope: Envelope, token: str, resend_reason: str | None,
                 folder: tuple[str, ...]) -> Outcome:
    content_hash = envelope.content_hash
    attachment_sha256 = archive_path = None
    if envelope.attachment:
        attachment_sha256, path = archive_attachment(settings, report, period,
                                                     envelope.attachment)
        archive_path = str(path)
    message_id = hashlib.sha256(f"{report}|{period}|{envelope.email}|{content_hash}|{token}"
                                .encode()).hexdigest()[:32]
    entry = ledger.LedgerEntry(report, period, envelope.email, content_hash, message_id,
                               envelope.locale, envelope.department, envelope.role,
                               attachment_sha256, archive_path)
    kind = "resend" if resend_reason else "scheduled"
    claim = ledger.claim(settings, warehouse, entry, token, kind, resend_reason)
    if not claim.won and claim.status == "sending":
        # Another worker, alive, is sending it right now: its outcome is this run's too.
        claim = _await_other_worker(settings, warehouse, entry, token, kind, resend_reason,
                                    claim)
    if not claim.won:
        status = {"sent": "already_sent", "sending": "in_flight"}.get(claim.status,
                                                                      claim.status)
        detail = (claim.previous or {}).get("error") or ""
        if claim.content_changed:
            detail = ("the report changed since it was delivered; it is not sent again "
                      "automatically (servicepulse resend … to send the corrected one)")
        return Outcome(envelope.email, status, detail or "", 0, claim.content_changed,
                       (claim.previous or {}).get("message_id"))

    handover: list[bool] = []

    def handing_over() -> None:
        ledger.mark_handover(settings, warehouse, entry, claim.sequence, token)
        handover.append(True)

    try:
        return _send_claimed(settings, warehouse, transport, envelope, entry, claim, token,
                             folder, message_id, handing_over)
    except Exception as exc:  # noqa: BLE001 - recorded in the ledger, then reported
        # Anything unforeseen between the claim and the outcome: the row must not stay
        # "sending". Before the hand-over nothing reached anyone: the send goes back to
        # retry at once; after it, the message may have arrived: in doubt.
        status = "in_doubt" if handover else "retry"
        when = "after the hand-over started" if handover else "before the hand-over"
        detail = f"{when}: {type(exc).__name__}: {exc}"
        try:
            ledger.mark(settings, warehouse, entry, claim.sequence, token, status,
                        error=detail)
        except Exception:
            log.exception("could not record %s for %s", status, envelope.email)
            raise exc from None
        log.error("%s %s to %s: %s", report, period, envelope.email, detail)
        return Outcome(envelope.email, status, detail, claim.sequence, message_id=message_id)


def _await_other_worker(settings: Settings, warehouse: Warehouse, entry: ledger.LedgerEntry,
                        token: str, kind: str, resend_reason: str | None,
                        claim: ledger.Claim) -> ledger.Claim:
    """Wait (bounded) while a live worker sends; then claim again, which reports its
    outcome, or takes the send over if that worker died before its hand-over."""
    smtp = settings.delivery.smtp
    deadline = time.monotonic() + smtp.timeout_seconds * (smtp.max_attempts + 1) + sum(
        smtp.retry_backoff_seconds * 2 ** n for n in range(smtp.max_attempts))
    while claim.status == "sending" and not claim.won and time.monotonic() < deadline:
        if isinstance(warehouse, ledger.LedgerConnection):
            warehouse.while_waiting()
        time.sleep(0.2)
        claim = ledger.claim(settings, warehouse, entry, token, kind, resend_reason)
    return claim


def _send_claimed(settings: Settings, warehouse: Warehouse, transport: Transport,
                  envelope: Envelope, entry: ledger.LedgerEntry, claim: ledger.Claim,
                  token: str, folder: tuple[str, ...], message_id: str,
                  handing_over) -> Outcome:
    message = _message(settings, envelope, message_id)
    stem = envelope.email if claim.sequence == 0 else f"{envelope.email}.resend-{claim.sequence}"
    smtp = settings.delivery.smtp
    for attempt in range(1, smtp.max_attempts + 1):
        try:
            reply = transport.send(message, str(settings.delivery.sender), envelope.email,
                                   folder, stem, on_handover=handing_over)
        except TemporaryDeliveryError as exc:
            if attempt < smtp.max_attempts:
                wait = smtp.retry_backoff_seconds * 2 ** (attempt - 1)
                log.warning("%s; attempt %d of %d, next in %.1f s", exc, attempt,
                            smtp.max_attempts, wait)
                time.sleep(wait)
                continue
            ledger.mark(settings, warehouse, entry, claim.sequence, token, "retry",
                        error=str(exc))
            return Outcome(envelope.email, "retry", str(exc), claim.sequence,
                           message_id=message_id)
        except PermanentDeliveryError as exc:
            ledger.mark(settings, warehouse, entry, claim.sequence, token, "failed",
                        error=str(exc))
            return Outcome(envelope.email, "failed", str(exc), claim.sequence,
                           message_id=message_id)
        except InDoubtDeliveryError as exc:
            ledger.mark(settings, warehouse, entry, claim.sequence, token, "in_doubt",
                        error=str(exc))
            return Outcome(envelope.email, "in_doubt", str(exc), claim.sequence,
                           message_id=message_id)
        ledger.mark(settings, warehouse, entry, claim.sequence, token, "sent", smtp_reply=reply)
        return Outcome(envelope.email, "sent", reply, claim.sequence, message_id=message_id)
    raise AssertionError("unreachable: the loop returns on every path")


def _message(settings: Settings, envelope: Envelope, message_id: str) -> EmailMessage:
    return build_message(str(settings.delivery.sender), [(envelope.name, envelope.email)],
                         envelope.subject, envelope.html, envelope.text,
                         identity=message_id, attachment=envelope.attachment,
                         message_id=message_id, also_attached=envelope.also_attached,
                         inline_images=envelope.inline_images)


def problem_text(report: str, period: str, problems: list[Outcome]) -> str:
    lines = [f"{report} {period}: {len(problems)} recipient(s) not delivered:"]
    lines += [f"  {o.recipient}: {o.status}: {o.detail}" for o in problems]
    return "\n".join(lines)


ADVICE = {
    "failed": "refused for good: fix the address or account in the configuration; "
              "a corrected address is a new recipient and is sent on the next run.",
    "retry": "temporary failures used up the attempts: the task's retries and the next "
             "run send it (only it).",
    "in_flight": "another worker was still sending it when this run gave up waiting: "
                 "the next run reports its outcome (or sends it, if that worker died "
                 "before handing it over).",
    "in_doubt": "handed over but never confirmed: look for the Message-ID in the mail "
                "server's log, then `servicepulse deliveries settle --report R --period P "
                "--recipient A --delivered` (or `--not-delivered`: the next run sends it).",
}


def delivery_alert(result: DeliveryResult, problems: list[Outcome], changed: list[Outcome],
                   token: str, subject: str | None = None, intro: str = "") -> Alert:
    """The data team's alert about this run's sends: one line per recipient that needs
    attention (or whose content changed after delivery), with what to do. Keyed by the
    run: a re-run that meets the same refused address alerts again, until it is fixed."""
    subject = "[ServicePulse delivery] " + (
        subject or f"{result.report} {result.period}: {len(problems)} not delivered, "
                   f"{len(changed)} changed after delivery")
    lines = []
    for outcome in problems + changed:
        status = outcome.status if outcome.needs_attention else "changed"
        advice = ADVICE.get(outcome.status, "") if outcome.needs_attention else outcome.detail
        if outcome.status == "in_doubt" and outcome.message_id:
            advice += f" Message-ID: <{outcome.message_id}@servicepulse.local>"
        lines.append(f"{outcome.recipient}: {status}: {outcome.detail} -> {advice}")
    return Alert(
        kind="delivery", what=f"{result.report} report delivery",
        interval=f"{result.report} {result.period}", subject=subject,
        first_error=(lines[0] if lines else intro)[:300],
        details=tuple(line for line in (intro, *lines) if line),
        severity="critical" if problems else "warning",
        next_step=("`servicepulse deliveries --report R --period P` shows the ledger; an "
                   "in-doubt send is checked in the mail server's log, not re-sent."
                   if problems else ""),
        dedupe_key=f"delivery|{result.report}|{result.period}|{token}",
        stem=f"delivery-{result.report}-{result.period}")


def tell_the_data_team(settings: Settings, alert: Alert) -> str:
    """Through notify, the one path of every alert: every channel of the data team,
    once, rate-limited, kept pending when a channel cannot take it."""
    from servicepulse.delivery.notify import notify

    outcomes = notify(settings, alert).outcomes
    return "; ".join(f"{channel}: {outcome}" for channel, outcome in outcomes.items())
