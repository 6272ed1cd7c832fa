"""Is the nightly running at all? Its heartbeat is the newest moment its data checks ran
(quality.check_results.checked_at, written whether the checks pass or fail).

A scheduler that is down, a paused or unparseable nightly DAG, or a run stuck before its
checks leave no failed task to alert on: only the absence of a heartbeat shows them.
The report DAGs check it on every scheduled run, and `servicepulse heartbeat` checks it
from outside Airflow (cron, a monitoring probe) so that a dead scheduler is seen too.
A stale heartbeat alerts the data team once per last heartbeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from servicepulse.constants import NIGHTLY_DAG_ID
from servicepulse.delivery.alert import Alert
from servicepulse.settings import Settings
from servicepulse.warehouse import WarehouseMissing, connected

NEXT_STEP = ("Check that Airflow's scheduler and DAG processor run (docker compose ps), that "
             f"{NIGHTLY_DAG_ID} is unpaused and imports without errors (the UI's import "
             "errors), and that no run of it is stuck; then run the missing nights "
             "(servicepulse run --date … --to …).")


@dataclass(frozen=True)
class Heartbeat:
    last: datetime | None        # the newest check, UTC; None: the nightly never checked
    moment: datetime
    max_age: timedelta

    @property
    def fresh(self) -> bool:
        return self.last is not None and self.moment - self.last <= self.max_age

    def describe(self) -> str:
        if self.last is None:
            return f"{NIGHTLY_DAG_ID} has never checked any data"
        hours = (self.moment - self.last).total_seconds() / 3600
        return (f"{NIGHTLY_DAG_ID} last checked data {hours:.1f} h ago "
                f"({self.last.isoformat(timespec='seconds')}; allowed: "
                f"{self.max_age.total_seconds() / 3600:g} h)")

    def as_dict(self) -> dict[str, object]:
        return {"fresh": self.fresh, "last_checked_at": self.last.isoformat() if self.last
                else None, "moment": self.moment.isoformat(),
                "max_age_hours": self.max_age.total_seconds() / 3600,
                "summary": self.describe()}


def read_heartbeat(settings: Settings, moment: datetime) -> Heartbeat:
    schema = settings.warehouse.schema("quality")
    max_age = timedelta(hours=settings.schedule.heartbeat_max_age_hours)
    try:
        with connected(settings, read_only=True) as warehouse:
            if not warehouse.table_exists(schema, "check_results"):
                return Heartbeat(None, moment, max_age)
            frame = warehouse.fetch_frame(
                f'select max(checked_at) as last from "{schema}"."check_results"')
    except WarehouseMissing:  # nothing was ever built: no heartbeat at all
        return Heartbeat(None, moment, max_age)
    last = frame["last"].iloc[0] if len(frame) else None
    if last is None or pd.isna(last):
        return Heartbeat(None, moment, max_age)
    last = pd.Timestamp(last)
    last = (last.tz_localize(UTC) if last.tzinfo is None else last.tz_convert(UTC))
    return Heartbeat(last.to_pydatetime(), moment.astimezone(UTC), max_age)


def stale_alert(heartbeat: Heartbeat) -> Alert:
    since = heartbeat.last.isoformat(timespec="seconds") if heartbeat.last else "never"
    return Alert(kind="heartbeat", what=f"{NIGHTLY_DAG_ID} (not running)",
                 interval=f"since {since}", first_error=heartbeat.describe(),
                 next_step=NEXT_STEP, dedupe_key=f"heartbeat|{since}",
                 subject=f"[ServicePulse] {NIGHTLY_DAG_ID} is not running: no data "
                         f"checked since {since}")


def check_heartbeat(settings: Settings, moment: datetime) -> dict[str, object]:
    """The nightly's heartbeat at ``moment``; a stale one alerts the data team (once per
    last heartbeat) and is returned with ``fresh`` false."""
    from servicepulse.delivery.notify import notify

    heartbeat = read_heartbeat(settings, moment)
    result = heartbeat.as_dict()
    if not heartbeat.fresh:
        result["alert"] = notify(settings, stale_alert(heartbeat)).outcomes
    return result
