"""Run the nightly DAG through Airflow for one local day (`servicepulse run`).

Airflow gets a project-local AIRFLOW_HOME with SQLite metadata, created on first
use. The run is `airflow dags test`, which executes every task of one DAG run in
this process's virtualenv, with the data interval of the day asked for.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from servicepulse.constants import (
    NIGHTLY_DAG_ID,
    REPORT_DAG_IDS,
    WAREHOUSE_POOL,
    WAREHOUSE_POOL_SLOTS,
)
from servicepulse.errors import PermanentError
from servicepulse.paths import DAGS_DIR
from servicepulse.processes import run_child
from servicepulse.settings import Settings

DAG_ID = NIGHTLY_DAG_ID
WEEKLY_DAG_ID = REPORT_DAG_IDS["weekly"]
MONTHLY_DAG_ID = REPORT_DAG_IDS["monthly"]


class PipelineRunError(PermanentError):
    """A DAG run did not succeed; the message names its log and the failed task."""


@dataclass(frozen=True)
class RunOutcome:
    dag_id: str
    day: date
    state: str
    log_file: Path
    data_interval: tuple[str, str]


def airflow_environment(settings: Settings) -> dict[str, str]:
    home = settings.airflow_home_path
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "SERVICEPULSE_CONFIG": str(settings.config_file),
        "SERVICEPULSE_REPORTING_TIMEZONE": settings.reporting_timezone,
        "SERVICEPULSE_START_DATE": settings.schedule.start_date.isoformat(),
        # No deadline alert in an in-process run: it has no triggerer to fire one, and
        # Airflow 3.3's dag.test() fails a run whose DAG has one (it looks the alert up
        # by the alert itself where the scheduler passes its id). The process's own
        # exit code and failure alerts cover a run the operator is watching.
        "SERVICEPULSE_NIGHTLY_DEADLINE_HOURS": "0",
    })
    return env


def _airflow(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    airflow = Path(sys.executable).with_name("airflow")
    return run_child([str(airflow), *arguments], env=env)


def ensure_metadata_db(settings: Settings, env: dict[str, str]) -> None:
    home = settings.airflow_home_path
    marker = home / ".servicepulse-initialised"
    if marker.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    for arguments in (("db", "migrate"),
                      ("pools", "set", WAREHOUSE_POOL,
                       str(WAREHOUSE_POOL_SLOTS[settings.warehouse.kind]),
                       "warehouse tasks, as many at once as the warehouse allows")):
        completed = _airflow(*arguments, env=env)
        if completed.returncode != 0:
            raise PipelineRunError(f"airflow {' '.join(arguments)} failed:\n"
                                   + (completed.stderr or completed.stdout)[-3000:])
    marker.write_text("ok\n")


def logical_date_for(settings: Settings, day: date) -> datetime:
    """The run whose data interval is the local day ``day`` ends at the next midnight."""
    return datetime.combine(day + timedelta(days=1), time(0), settings.tz).astimezone(
        UTC)


def run_nightly(settings: Settings, day: date) -> RunOutcome:
    return run_dag(settings, DAG_ID, logical_date_for(settings, day), day)


def run_weekly_report(settings: Settings, period_label: str, day: date) -> RunOutcome:
    """The weekly report DAG for ``period_label`` (what the scheduler does when the
    nightly run's mart checks pass; `dags test` does not follow Assets)."""
    return run_dag(settings, WEEKLY_DAG_ID, logical_date_for(settings, day), day,
                   conf={"period": period_label})


def run_monthly_report(settings: Settings, period_label: str, day: date) -> RunOutcome:
    """The monthly report DAG for ``period_label``, as run_weekly_report."""
    return run_dag(settings, MONTHLY_DAG_ID, logical_date_for(settings, day), day,
                   conf={"period": period_label})


def run_dag(settings: Settings, dag_id: str, logical: datetime, day: date,
            conf: dict | None = None) -> RunOutcome:
    if day < settings.schedule.start_date:
        raise PipelineRunError(
            f"{dag_id} cannot run for {day.isoformat()}: the DAGs start on "
            f"{settings.schedule.start_date.isoformat()} (settings schedule.start_date); "
            "set it on or before the first day of your data")
    if settings.airflow_api.url:  # a deployment with a scheduler: a real, followed run
        return _run_through_scheduler(settings, dag_id, logical, day, conf)
    run_started = datetime.now(UTC)
    started = run_started.strftime("%Y%m%dT%H%M%SZ")
    env = airflow_environment(settings)
    ensure_metadata_db(settings, env)
    arguments = ["dags", "test", dag_id, logical.isoformat()]
    if conf:
        arguments += ["--conf", json.dumps(conf)]
    completed = _airflow(*arguments, env=env)
    output = completed.stdout + completed.stderr
    log_dir = settings.output_path / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # One file per run (its start and pid in the name): a second run of the same DAG and
    # day never overwrites the first one's cause.
    log_file = log_dir / f"{dag_id}-{day.isoformat()}-{started}-{os.getpid()}.log"
    log_file.write_text(output, encoding="utf-8")

    # The run's outcome from Airflow's own record of it, not from its log text.
    run = _newest_run(settings, dag_id)
    if run is not None and _ended_after(run, run_started):
        state = run["state"] or "unknown"
        interval = (_utc(run["data_interval_start"]), _utc(run["data_interval_end"]))
        _record_real_start(settings, run["id"], run_started)
    else:
        state, interval = "unknown", None
    tasks = _task_states(settings, dag_id)
    if completed.returncode == 0 and state == "success" and not tasks:
        # Airflow calls a run in which no task ran a success (a day its DAG does not
        # cover); nothing was loaded, built or sent, and that must not pass unnoticed.
        raise PipelineRunError(
            f"{dag_id} for {day.isoformat()} ran no task (Airflow said {state!r}); the "
            f"DAG start date is {settings.schedule.start_date.isoformat()} "
            f"(settings schedule.start_date); full log: {log_file}")
    if completed.returncode != 0 or state != "success":
        raise PipelineRunError(
            f"{dag_id} for {day.isoformat()} ended with state {state!r} "
            f"(exit {completed.returncode}); full log: {log_file}\n" + _failure_digest(output))
    return RunOutcome(dag_id, day, state, log_file,
                      (str(interval[0]), str(interval[1])) if interval else ("?", "?"))


def _run_through_scheduler(settings: Settings, dag_id: str, logical: datetime, day: date,
                           conf: dict | None) -> RunOutcome:
    """The run as the scheduler would make it, through the Airflow REST API: the nightly
    dated by its interval's start (the local day), a report run with its period in conf
    and no logical date (it is not one of the schedule's runs)."""
    from servicepulse.airflow_api import trigger_and_follow

    if dag_id == DAG_ID:
        start = datetime.combine(day, time(0), settings.tz).astimezone(UTC)
        interval: tuple[datetime, datetime] | None = (start, logical)
        dated: datetime | None = start
    else:
        interval, dated = None, None
    state, record = trigger_and_follow(settings, dag_id, dated, interval, day.isoformat(),
                                       conf, log_dir=settings.output_path / "runs")
    shown = (str(interval[0]), str(interval[1])) if interval else ("?", "?")
    return RunOutcome(dag_id, day, state, record, shown)


def _newest_run(settings: Settings, dag_id: str) -> dict | None:
    """The newest run of ``dag_id`` in Airflow's metadata database (None: none yet)."""
    import sqlite3

    database = settings.airflow_home_path / "airflow.db"
    if not database.exists():
        return None
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        row = connection.execute(
            "select id, state, data_interval_start, data_interval_end, end_date from dag_run "
            "where dag_id = ? order by id desc limit 1", (dag_id,)).fetchone()
    return dict(row) if row else None


def _utc(stored: str | None) -> datetime | None:
    """A timestamp as Airflow's SQLite metadata stores it (naive UTC)."""
    if not stored:
        return None
    moment = datetime.fromisoformat(str(stored))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ended_after(run: dict, moment: datetime) -> bool:
    """Whether ``run`` is the one this command made: it ended after the command began
    (`dags test` replaces an earlier run of the same date, possibly under its id)."""
    ended = _utc(run.get("end_date"))
    return ended is not None and ended >= moment


def _record_real_start(settings: Settings, run_id: int, started: datetime) -> None:
    """`airflow dags test` records the logical date as the run's start, so the UI showed
    the nightly as a 14-hour run; the run really started when this command started it."""
    import sqlite3

    with sqlite3.connect(settings.airflow_home_path / "airflow.db") as connection:
        connection.execute("update dag_run set start_date = ? where id = ?",
                           (started.strftime("%Y-%m-%d %H:%M:%S.%f"), run_id))


def _task_states(settings: Settings, dag_id: str) -> dict[str, str]:
    """Task id -> state of the newest run of ``dag_id``, from Airflow's metadata
    database (the run `airflow dags test` just made)."""
    import sqlite3

    database = settings.airflow_home_path / "airflow.db"
    with sqlite3.connect(database) as connection:
        row = connection.execute("select run_id from dag_run where dag_id = ? "
                                 "order by id desc limit 1", (dag_id,)).fetchone()
        if row is None:
            return {}
        return dict(connection.execute(
            "select task_id, state from task_instance where dag_id = ? and run_id = ?",
            (dag_id, row[0])).fetchall())


def _failure_digest(output: str) -> str:
    """The lines a person needs: which task failed and the error it raised."""
    keep = []
    lines = output.splitlines()
    for index, line in enumerate(lines):
        # Any error's line (no list of the project's error names to fall behind) and
        # Airflow's own word on which task failed.
        if re.search(r"(\w+(Error|Exception|Incomplete|Failed|NotReady)\b: |Task failed|"
                     r"new_state=failed|state=failed|Marking task as FAILED)", line):
            keep.append(line[:600])
            if "Error:" in line:
                keep.extend(l[:600] for l in lines[index + 1:index + 12] if l.startswith("- "))
    seen, unique = set(), []
    for line in keep:
        if line not in seen:
            seen.add(line)
            unique.append(line)
    return "\n".join(unique[-25:])
