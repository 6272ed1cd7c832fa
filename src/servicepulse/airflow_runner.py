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

from servicepulse.errors import PermanentError
from servicepulse.processes import run_child
from servicepulse.settings import PROJECT_ROOT, Settings

DAG_ID = "servicepulse_nightly"
WEEKLY_DAG_ID = "servicepulse_weekly_report"
MONTHLY_DAG_ID = "servicepulse_monthly_report"
DAGS_FOLDER = PROJECT_ROOT / "dags"
WAREHOUSE_POOL = "servicepulse_warehouse"


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
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "SERVICEPULSE_CONFIG": str(settings.config_file),
        "SERVICEPULSE_REPORTING_TIMEZONE": settings.reporting_timezone,
        "SERVICEPULSE_START_DATE": settings.schedule.start_date.isoformat(),
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
                      ("pools", "set", WAREHOUSE_POOL, "1",
                       "DuckDB has one writer at a time: warehouse tasks run one by one")):
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
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
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

    finished = re.search(r"DagRun Finished: .*?state=([a-z_]+)", output)
    interval = re.search(r"DagRun Finished: .*?data_interval_start=([^,]+), "
                         r"data_interval_end=([^,]+)", output)
    state = finished.group(1) if finished else "unknown"
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
                      (interval.group(1), interval.group(2)) if interval else ("?", "?"))


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
        if re.search(r"(SourceError|QualityGateError|TransformError|RenderError|PeriodError|"
                     r"ConfigError|IntervalError|ReportNotReady|DeliveryFailed|"
                     r"DeliveryIncomplete|Task failed|new_state=failed|"
                     r"state=failed|Marking task as FAILED)", line):
            keep.append(line[:600])
            if "Error:" in line:
                keep.extend(l[:600] for l in lines[index + 1:index + 12] if l.startswith("- "))
    seen, unique = set(), []
    for line in keep:
        if line not in seen:
            seen.add(line)
            unique.append(line)
    return "\n".join(unique[-25:])
