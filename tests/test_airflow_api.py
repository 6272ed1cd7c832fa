"""`servicepulse run` against a running Airflow (issue #27): with airflow_api.url set it
triggers the nightly through the REST API of a real API server, the scheduler runs the
tasks, and the command follows the run's state to its end. The run is an ordinary
manual run in Airflow's record (triggered by the REST API, dated by its night, with its
real start and end); running the night again clears that run instead of failing on
Airflow's one-run-per-date rule; a failed task is named with its log link."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from servicepulse.cli import main
from servicepulse.demo.generate import GenerationSpec, generate
from tests.conftest import settings_for

PROJECT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PASSWORD = "night-shift"
START, DAYS = date(2026, 10, 1), 53  # October whole: `run` also sends its month
NIGHT = date(2026, 11, 22)
READER = {"email": "ops@example.com", "name": "运营总监", "locale": "zh-CN"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def airflow(tmp_path):
    """An Airflow of its own: metadata in SQLite, the project's DAGs, LocalExecutor, a
    login (simple auth manager, password from a file), API server, scheduler and DAG
    processor as separate processes, as in a deployment."""
    home, port = tmp_path / "airflow", _free_port()
    home.mkdir()
    (home / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    sources = tmp_path / "sources"
    generate(GenerationSpec(out=sources, start=START, days=DAYS, seed=3, tickets_per_day=60))
    settings = settings_for(tmp_path / "run", sources, airflow_home=str(home),
                            airflow_api={"url": f"http://127.0.0.1:{port}",
                                         "poll_seconds": 1, "timeout_minutes": 15},
                            **{"delivery.weekly": [READER], "delivery.monthly": [READER]})
    env = {**os.environ,
           "AIRFLOW_HOME": str(home),
           "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
           "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple."
                                          "simple_auth_manager.SimpleAuthManager",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
           "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
           "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
           # Only the runs this test makes (and the Asset-triggered report runs): the
           # scheduler's own run of the newest night would find 2026's data stale.
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
           "AIRFLOW__API_AUTH__JWT_SECRET": "a-test-only-secret-of-a-decent-length-0123456789",
           "AIRFLOW__API__SECRET_KEY": "a-test-only-api-secret",
           "SERVICEPULSE_CONFIG": str(settings.config_file),
           "SERVICEPULSE_REPORTING_TIMEZONE": settings.reporting_timezone,
           "SERVICEPULSE_START_DATE": settings.schedule.start_date.isoformat()}
    for command in (["db", "migrate"], ["pools", "set", "servicepulse_warehouse", "1", "w"]):
        subprocess.run([AIRFLOW, *command], env=env, check=True, capture_output=True)
    logs = [open(home / f"{name}.log", "w")  # noqa: SIM115 - open for the processes' life
            for name in ("api", "scheduler", "processor")]
    processes = [subprocess.Popen([AIRFLOW, *command], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
                 for command, log in zip((["api-server", "--port", str(port)], ["scheduler"],
                                          ["dag-processor"]), logs, strict=True)]
    try:
        _wait_for_dags(port)
        yield settings, home
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, 15)
            except ProcessLookupError:
                pass
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
        for log in logs:
            log.close()


def _wait_for_dags(port: int, timeout: float = 180) -> None:
    """Until the API server answers and the DAG processor has stored the nightly."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/auth/token", method="POST",
                data=json.dumps({"username": "admin", "password": PASSWORD}).encode(),
                headers={"Content-Type": "application/json"})
            token = json.load(urllib.request.urlopen(request, timeout=5))["access_token"]
            dags = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/dags",
                                          headers={"Authorization": f"Bearer {token}"})
            known = {d["dag_id"] for d in json.load(urllib.request.urlopen(dags))["dags"]}
            if "servicepulse_nightly" in known:
                return
        except OSError:
            pass
        time.sleep(2)
    raise AssertionError("the Airflow API server or DAG processor did not come up")


def _nightly_runs(home: Path) -> list[dict]:
    with sqlite3.connect(home / "airflow.db") as metadata:
        metadata.row_factory = sqlite3.Row
        return [dict(r) for r in metadata.execute(
            "select run_id, run_type, triggered_by, state, logical_date, start_date, "
            "end_date, data_interval_start, data_interval_end from dag_run "
            "where dag_id = 'servicepulse_nightly' order by id")]


@pytest.mark.airflow
def test_run_triggers_the_scheduler_and_follows_the_run(airflow, monkeypatch, capsys):
    settings, home = airflow
    monkeypatch.setenv("SERVICEPULSE_AIRFLOW_PASSWORD", PASSWORD)
    config = ["--config", str(settings.config_file)]
    assert main(["run", "--date", NIGHT.isoformat(), *config]) == 0
    printed = capsys.readouterr().out
    assert "servicepulse_nightly for 2026-11-22 (data interval 2026-11-21 16:00:00+00:00 " \
           "– 2026-11-22 16:00:00+00:00): success" in printed
    (run,) = _nightly_runs(home)
    assert (run["run_type"], run["triggered_by"].lower(), run["state"]) == \
        ("manual", "rest_api", "success")
    assert run["logical_date"].startswith("2026-11-21 16:00:00")  # dated by its night
    assert run["data_interval_end"].startswith("2026-11-22 16:00:00")
    record = json.loads(next((settings.output_path / "runs").glob(
        "servicepulse_nightly-2026-11-22-*.json")).read_text())
    assert {t["task_id"]: t["state"] for t in record["tasks"]} == {
        "load_crm_customers": "success", "load_crm_tickets": "success",
        "load_complaints": "success", "load_survey_responses": "success",
        "load_audits": "success", "check_raw_data": "success", "dbt_build": "success",
        "check_marts": "success", "track_actions": "success",
        "send_action_notices": "success"}
    assert main(["kpis", "--period", "2026-W47", "--format", "json", *config]) == 0
    assert json.loads(capsys.readouterr().out)["kpis"]["TICKETS"]["value"] > 0

    # The same night again: the run is cleared and runs again, not refused.
    assert main(["run", "--date", NIGHT.isoformat(), "--config",
                 str(settings.config_file)]) == 0
    (again,) = _nightly_runs(home)
    assert again["run_id"] == run["run_id"] and again["state"] == "success"
    assert again["start_date"] > run["end_date"]

    # A source that is gone fails its task for good: the command names it and its log.
    (Path(settings.sources_dir) / "audits.csv").rename(Path(settings.sources_dir) / "gone")
    assert main(["run", "--date", "2026-11-21", *config]) != 0
    error = capsys.readouterr().err
    assert "load_audits: failed" in error and "/dags/servicepulse_nightly/runs/" in error
