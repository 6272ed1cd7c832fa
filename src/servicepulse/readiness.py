"""Is a period's data ready for readers? Only if the data-quality gate says so.

The gate's results (quality.check_results) are the record: a period is ready when
the newest checked run whose interval reaches the period's end checked the marts and
had no critical failure. The answer depends on the warehouse, never on the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

import pandas as pd

from servicepulse.kpis import Period
from servicepulse.settings import Settings
from servicepulse.warehouse import Warehouse


@dataclass(frozen=True)
class Readiness:
    period: str
    ready: bool
    reason: str


def period_end_moment(settings: Settings, period: Period) -> datetime:
    return datetime.combine(period.end + timedelta(days=1), time(0), settings.tz)


def checked_runs(settings: Settings, warehouse: Warehouse) -> pd.DataFrame:
    """One row per quality run: its interval end (local), when it ran, how many mart
    checks it made and how many critical checks failed; oldest first."""
    schema = settings.warehouse.schema("quality")
    if not warehouse.table_exists(schema, "check_results"):
        return pd.DataFrame(columns=["run_id", "interval_end", "checked_at", "marts_checks",
                                     "critical_failures"])
    runs = warehouse.fetch_frame(
        f"select run_id, max(interval_end) as interval_end, max(checked_at) as checked_at, "
        f"sum(case when layer = 'marts' then 1 else 0 end) as marts_checks, "
        f"sum(case when severity = 'critical' and not success then 1 else 0 end) "
        f"as critical_failures from \"{schema}\".\"check_results\" group by run_id")
    runs["interval_end"] = pd.to_datetime(runs["interval_end"], utc=True).dt.tz_convert(
        settings.tz)
    return runs.sort_values(["interval_end", "checked_at"])


def _failed_checks(settings: Settings, warehouse: Warehouse, run_id: str) -> list[str]:
    frame = warehouse.fetch_frame(
        f'select suite, check_name from "{settings.warehouse.schema("quality")}".'
        f'"check_results" where run_id = ? and severity = \'critical\' and not success '
        f"order by suite, check_name", [run_id])
    return [f"{s}.{c}" for s, c in zip(frame["suite"], frame["check_name"])]


def period_readiness(settings: Settings, warehouse: Warehouse, period: Period) -> Readiness:
    end = period_end_moment(settings, period)
    runs = checked_runs(settings, warehouse)
    covering = runs[runs["interval_end"] >= pd.Timestamp(end)]
    if covering.empty:
        newest = ("the newest checked interval ends "
                  + runs["interval_end"].iloc[-1].strftime("%Y-%m-%d %H:%M %Z")
                  if len(runs) else "no interval has been checked yet")
        return Readiness(period.label, False,
                         f"no data checked through {period.end.isoformat()} yet ({newest})")
    latest = covering.iloc[-1]
    if latest["critical_failures"]:
        failed = ", ".join(_failed_checks(settings, warehouse, latest["run_id"]))
        return Readiness(period.label, False,
                         f"held by the data-quality gate in run {latest['run_id']}: "
                         f"{int(latest['critical_failures'])} critical check(s) failed "
                         f"({failed})")
    if not latest["marts_checks"]:
        return Readiness(period.label, False,
                         f"run {latest['run_id']} has not checked the marts (it stopped "
                         "before, or is still running)")
    return Readiness(period.label, True,
                     f"checked and passed in run {latest['run_id']}")


def _passed(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that checked the marts and failed no critical check."""
    return runs[(runs["marts_checks"] > 0) & (runs["critical_failures"] == 0)]


def newest_ready_end(settings: Settings, warehouse: Warehouse) -> datetime | None:
    """The end of the newest interval whose run checked the marts and passed."""
    passed = _passed(checked_runs(settings, warehouse))
    return None if passed.empty else passed["interval_end"].iloc[-1].to_pydatetime()


def releasing_run(settings: Settings, warehouse: Warehouse, period: Period) -> pd.Series | None:
    """The run that released ``period``: the first run reaching its end that passed (the
    newest run, for a period not released yet; None before any check). Later nights'
    runs do not change it."""
    runs = checked_runs(settings, warehouse)
    if runs.empty:
        return None
    passed = _passed(runs)
    releasing = passed[passed["interval_end"] >= pd.Timestamp(period_end_moment(settings,
                                                                                period))]
    if releasing.empty:
        return runs.iloc[-1]
    return releasing[releasing["interval_end"] == releasing["interval_end"].min()].iloc[-1]
