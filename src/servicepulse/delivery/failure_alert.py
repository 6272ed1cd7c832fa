"""Tell the data team when a pipeline step failed for good.

A permanent error (a delivery that cannot be loaded, a failed critical check, a
configuration mistake) is not retried: the task fails at once, and this alert says
what failed, for which interval, the error's first line, the task's log and what to do
next. It goes through the notifier (delivery.notify): every channel of the data team's
audience (e-mail through the configured transport, group-chat webhooks), once per
failure and interval; an alert that cannot be sent is logged loudly and kept pending,
never swallowed.
"""

from __future__ import annotations

import logging

from servicepulse.settings import Settings

log = logging.getLogger(__name__)
FOLDER = ("alerts",)


def alert_permanent_failure(settings: Settings, step: str, interval: str,
                            error: BaseException, log_url: str = "",
                            dedupe_key: str = "") -> list[str]:
    """Alert the data team's channels; returns what happened per channel
    ("<channel>: sent", "duplicate", "pending (...)", "no addresses")."""
    from servicepulse.delivery.alert import NEXT_STEP_PERMANENT, Alert
    from servicepulse.delivery.notify import notify

    kind = type(error).__name__
    lines = [line for line in str(error).splitlines() if line.strip()]
    alert = Alert(kind="task_failure", what=step, interval=interval,
                  first_error=f"{kind}: {lines[0].strip() if lines else 'no detail'}",
                  details=tuple(lines[1:12]), log_url=log_url,
                  next_step=NEXT_STEP_PERMANENT,
                  dedupe_key=dedupe_key or f"task_failure|{step}|{interval}",
                  stem=f"failure-{step}-{interval}",
                  subject=f"[ServicePulse] {step} failed for {interval}: {kind} "
                          "(not retried)")
    delivered = notify(settings, alert)
    return [f"{name}: {outcome}" for name, outcome in delivered.outcomes.items()]
