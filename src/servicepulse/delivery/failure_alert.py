"""Tell the data team when a pipeline step failed for good.

A permanent error (a delivery that cannot be loaded, a failed critical check, a
configuration mistake) is not retried: the task fails at once, and this message says
what failed, for which interval, the error's first lines and what to do next. It goes
through the configured transport (the outbox, or SMTP); if sending fails it is written
to the outbox and logged loudly, never swallowed.
"""

from __future__ import annotations

import logging
from html import escape

from servicepulse.delivery.outbox import build_message, write_to_outbox
from servicepulse.settings import Settings

log = logging.getLogger(__name__)
FOLDER = ("alerts",)


def alert_permanent_failure(settings: Settings, step: str, interval: str,
                            error: BaseException) -> list[str]:
    """Send the alert to every address of delivery.data_team; returns what happened
    to each (empty when no data team is configured)."""
    from servicepulse.delivery.transport import DeliveryError, transport_for

    if not settings.delivery.data_team:
        log.error("%s failed for good (%s) and delivery.data_team is empty: nobody is "
                  "told", step, error)
        return []
    kind = type(error).__name__
    first_lines = "\n".join(str(error).splitlines()[:12])
    subject = f"[ServicePulse] {step} failed for {interval}: {kind} (not retried)"
    next_step = ("It is not retried: fix what the message names (the delivery, its "
                 "mapping or the configuration), then run the interval again "
                 "(servicepulse run --date …).")
    text = f"{step} failed for {interval} with {kind}:\n\n{first_lines}\n\n{next_step}\n"
    html = ("<html><body style=\"font-family:Arial,sans-serif;font-size:14px\">"
            f"<p><b>{escape(step)} failed for {escape(interval)}</b> ({escape(kind)}, "
            f"not retried)</p><pre>{escape(first_lines)}</pre><p>{escape(next_step)}</p>"
            "</body></html>")
    message = build_message(settings.delivery.sender,
                            [("", str(address)) for address in settings.delivery.data_team],
                            subject, html, text, identity=f"failure|{step}|{interval}")
    stem = f"failure-{step}-{interval}".replace(" ", "_")
    transport = transport_for(settings)
    outcomes = []
    for address in settings.delivery.data_team:
        try:
            outcomes.append(transport.send(message, settings.delivery.sender, str(address),
                                           FOLDER, f"{stem}-{address}"))
        except DeliveryError as exc:
            path = write_to_outbox(settings.output_path / "outbox", FOLDER,
                                   f"{stem}-{address}", message)
            log.error("could not send the failure alert to %s (%s); written to %s",
                      address, exc, path)
            outcomes.append(f"not sent ({exc}); written to {path}")
    return outcomes
