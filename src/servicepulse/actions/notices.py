"""Rectification notices (整改通知书) and due reminders, e-mailed to an action's owner
through the delivery module: each exactly once, in the send ledger like the reports.

- a notice when an action opens, is reopened or reassigned (ledger report
  ``action_notice``, period ``<action_id>.event-<the event's number in the history>``), to
  the owner of that moment, saying only what that event fixed;
- a reminder when the deadline in force is reached and the action is not done (report
  ``action_reminder``, period ``<action_id>@<due date>``: an extended deadline gets
  its own reminder).

Only what the night's data made current is sent: an action opened, reopened or falling
due within ``actions.lookback_days`` of the night. A backfill of old nights does not mail
people about last year.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from servicepulse.actions import store
from servicepulse.kpis import kpi_definitions
from servicepulse.settings import ActionUser, Settings
from servicepulse.warehouse import Warehouse

log = logging.getLogger(__name__)

NOTICE, REMINDER = "action_notice", "action_reminder"


def _envelope(settings: Settings, owner: ActionUser, action: dict[str, Any], kind: str,
              item: str, found_on: date, snapshot: dict[str, Any] | None = None):
    """A notice (``snapshot``: the opening, reopening or reassignment it announces) or a
    reminder. Only what cannot change after sending is in it (the measure, a later
    reassignment or extension are not), so the send ledger never sees a sent message
    change: a new event is a new notice, a new deadline a new reminder."""
    from servicepulse.actions.texts import messages, templates
    from servicepulse.delivery.deliver import Envelope

    t = messages()[owner.locale]
    due = (snapshot or {}).get("due_on") or action["due_on"].isoformat()
    subject = t[f"{kind}_subject"].format(action_id=action["action_id"], item=item, due=due)
    record = [
        (t["notice_date"], found_on.isoformat()),
        (t["notice_item"], item),
        (t["standard"], action["standard"] or "–"),
        (t["notice_result"], t["notice_result_failed"]),
        (t["problem"], store.problem_in(action, owner.locale)),
    ]
    if snapshot is not None:
        record += [(t["department"], snapshot.get("department") or action["department"]),
                   (t["owner"], owner.name),
                   (t["measure"], t["notice_measure_pending"])]
    record += [(t["due"], due), (t["notice_verification"], t["notice_verification_pending"])]
    link = f"{settings.actions.app_url.rstrip('/')}/actions/{action['action_id']}" \
        if settings.actions.app_url else None
    context = {"t": t, "locale": owner.locale, "subject": subject, "action": action,
               "record": record, "link": link, "intro": t[f"{kind}_intro"]}
    return Envelope(
        email=str(owner.email), name=owner.name, subject=subject,
        text=templates().get_template("notice.txt.j2").render(**context),
        html=templates().get_template("notice.html.j2").render(**context),
        locale=owner.locale, department=action["department"], role="action owner")


def _item(definitions: dict[str, dict[str, Any]], action: dict[str, Any],
          locale: str) -> str:
    from servicepulse.actions.texts import messages

    t = messages()[locale]
    kind = t[f"kind_{action['finding_kind']}"]
    definition = definitions.get(action["kpi_id"] or "")
    if not definition:
        return kind
    return f"{kind} · {definition['name_zh'] if locale == 'zh-CN' else definition['name_en']}"


ANNOUNCED = ("opened", "reopened", "reassigned")


def due_messages(settings: Settings, warehouse: Warehouse,
                 as_of: date) -> list[tuple[str, str, Any]]:
    """(ledger report, ledger period, envelope) of every notice and reminder the night
    ending at ``as_of`` makes current, for owners with an e-mail address: a notice of the
    action's latest opening, reopening or reassignment (period ``<action_id>.event-<its number
    in the history>``), a reminder of the deadline in force (``<action_id>@<date>``)."""
    earliest = as_of - timedelta(days=settings.actions.lookback_days)
    definitions = kpi_definitions(settings, warehouse)
    wanted = []
    for action in store.actions(settings, warehouse, statuses=store.TO_WORK):
        owner = settings.actions.user(action["owner"]) if action["owner"] else None
        if owner is None or owner.email is None:
            log.info("corrective action %s: no owner with an e-mail address (actions.owners, "
                     "actions.users), no notice sent", action["action_id"])
            continue
        item = _item(definitions, action, owner.locale)
        events = [row for row in store.history(settings, warehouse, action["action_id"])
                  if row["event"] in ANNOUNCED]
        if events:
            latest = events[-1]
            on = latest["happened_at"].astimezone(settings.tz).date()
            if earliest <= on <= as_of:
                wanted.append((NOTICE, f"{action['action_id']}.event-{latest['seq']}",
                               _envelope(settings, owner, action, "notice", item, on,
                                         latest["detail"])))
        if earliest <= action["due_on"] <= as_of:
            wanted.append((REMINDER, f"{action['action_id']}@{action['due_on'].isoformat()}",
                           _envelope(settings, owner, action, "reminder", item,
                                     action["opened_on"])))
    return wanted


def send_notices(settings: Settings, warehouse: Warehouse, as_of: date,
                 run_id: str | None = None) -> dict[str, int]:
    """Send what is due, each once (the send ledger). One owner's failed send does not
    hold back the others: the data team is told of each, and the step fails at the end
    (a retry sends only what is left)."""
    from servicepulse.delivery.deliver import DeliveryFailed, DeliveryIncomplete, deliver

    counts: dict[str, int] = {}
    problems: list[Exception] = []
    for report, period, envelope in due_messages(settings, warehouse, as_of):
        try:
            result = deliver(settings, warehouse, report, period, [envelope], run_id=run_id)
        except (DeliveryFailed, DeliveryIncomplete) as exc:
            problems.append(exc)
            counts["not_sent"] = counts.get("not_sent", 0) + 1
            continue
        for outcome in result.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
            if outcome.content_changed:
                counts["content_changed"] = counts.get("content_changed", 0) + 1
    retryable = [p for p in problems if isinstance(p, DeliveryIncomplete)]
    if retryable:
        raise DeliveryIncomplete("; ".join(str(p) for p in problems))
    if problems:
        raise DeliveryFailed("; ".join(str(p) for p in problems))
    return counts
