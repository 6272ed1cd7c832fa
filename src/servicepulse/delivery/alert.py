"""An alert: what failed, for which interval, the first error line, the log and the next
step, rendered for each kind of channel (plain text, markdown, HTML, JSON).

A value with no I/O: delivery.notify sends it, delivery.channels renders it per vendor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from html import escape
from typing import Any


@dataclass(frozen=True)
class Alert:
    kind: str                 # task_failure, data_quality, delivery, report_out, report_delayed
    what: str                 # what failed: "load crm_tickets", "dbt build", ...
    interval: str             # the data interval or period it concerns
    first_error: str = ""     # the error's first line
    next_step: str = ""
    log_url: str = ""
    severity: str = "critical"  # critical, warning, info
    dedupe_key: str = ""
    details: tuple[str, ...] = ()   # more lines (e-mail and long-form channels)
    audience: str = "data_team"
    stem: str = ""            # the outbox file name, for the e-mail channel
    subject: str = ""

    def __post_init__(self) -> None:
        if not self.dedupe_key:
            object.__setattr__(self, "dedupe_key",
                               f"{self.kind}|{self.what}|{self.interval}|{self.first_error}")

    def title(self) -> str:
        return self.subject or f"[ServicePulse] {self.what} failed for {self.interval}"

    def lines(self) -> list[str]:
        lines = [f"What: {self.what}", f"Interval: {self.interval}"]
        if self.first_error:
            lines.append(f"Error: {self.first_error}")
        lines += list(self.details)
        if self.log_url:
            lines.append(f"Log: {self.log_url}")
        if self.next_step:
            lines.append(f"Next step: {self.next_step}")
        return lines

    def plain(self) -> str:
        return "\n".join([self.title(), "", *self.lines()]) + "\n"

    def markdown(self) -> str:
        body = [f"**{self.title()}**", ""]
        for line in self.lines():
            label, _, rest = line.partition(": ")
            body.append(f"- **{label}**: {rest}" if rest and len(label) < 12 else f"- {line}")
        return "\n".join(body)

    def html(self) -> str:
        items = "".join(f"<li>{escape(line)}</li>" for line in self.lines())
        return ("<html><body style=\"font-family:Arial,sans-serif;font-size:14px\">"
                f"<p><b>{escape(self.title())}</b></p><ul>{items}</ul></body></html>")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["details"] = list(self.details)
        data["title"] = self.title()
        return data


def first_line(error: BaseException | str | None) -> str:
    text = str(error or "").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else "no detail"


def interval_text(start: Any, end: Any) -> str:
    moments = [m.isoformat() if hasattr(m, "isoformat") else str(m)
               for m in (start, end) if m is not None]
    if len(moments) == 2 and moments[0] == moments[1]:
        moments = moments[:1]
    return " – ".join(moments) or "this run"


def failure_key(dag_id: str, task_id: str, interval: str) -> str:
    """One failure of one task for one interval: alerted once, whichever path (the
    task's own run_step or the DAG's on_failure_callback) sees it first."""
    return f"task_failure|{dag_id}.{task_id}|{interval}"


NEXT_STEP_PERMANENT = ("It is not retried: fix what the message names (the delivery, its "
                       "mapping or the configuration), then run the interval again "
                       "(servicepulse run --date …, or clear the task in Airflow).")
NEXT_STEP_RETRIES = ("Its retries are spent: check what the error names (the warehouse, "
                     "dbt, a server), then clear the task in Airflow or run the interval "
                     "again (servicepulse run --date …).")
