"""The scaled-out path, for real: Airflow with PostgreSQL metadata, the CeleryExecutor on
the local Redis, a separate API server, scheduler, DAG processor and Celery worker. The
scheduler runs the nightly DAG for yesterday (a PostgreSQL warehouse); then the report DAG
is unpaused, the scheduler runs its due deadline run on a Celery worker, and the
recipient gets one e-mail. (Asset events that arrive while a DAG is paused do not queue a
run, so here it is the deadline run that sends; test_report_schedule covers both triggers.)

This is what docker-compose.yml deploys, minus Docker. It takes a few minutes."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg2
import pytest

from servicepulse.delivery.ledger import ledger_rows
from servicepulse.demo.generate import GenerationSpec, generate
from servicepulse.settings import load_settings
from servicepulse.warehouse import connected
from tests.conftest import PG, postgres_reachable, require_local_service, write_config
from tests.smtp_server import free_port

pytestmark = pytest.mark.airflow
ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
REDIS_DB = 9  # a database of its own on the local Redis, emptied before and after


def _redis_or_skip():
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=3)
    try:
        reachable = bool(client.ping())
    except redis.RedisError:
        reachable = False
    require_local_service(reachable, "Redis on 127.0.0.1:6379")
    return client


@pytest.fixture
def metadata_database():
    require_local_service(postgres_reachable(), "PostgreSQL on 127.0.0.1:5432")
    name = f"airflow_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(**{**PG, "dbname": "postgres"})
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'create database "{name}"')
    yield name
    with admin.cursor() as cursor:
        cursor.execute(f'drop database if exists "{name}" with (force)')
    admin.close()


def _query(database: str, sql: str, params=()):
    connection = psycopg2.connect(**{**PG, "dbname": database})
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params or None)
            return cursor.fetchall()
    except psycopg2.errors.UndefinedTable:
        return []
    finally:
        connection.close()


def _wait_for(what: str, check, timeout: float, logs: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(3)
    tails = "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace")
                                                    .splitlines()[-15:])
                      for p in sorted(logs.glob("*.log")))
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


def test_celery_workers_run_the_nightly_dag_and_the_report_follows(tmp_path, metadata_database,
                                                                   postgres_prefix):
    redis_client = _redis_or_skip()
    redis_client.flushdb()
    zone = ZoneInfo("Asia/Shanghai")
    yesterday = datetime.now(zone).date() - timedelta(days=1)  # what the scheduler will run
    sources = tmp_path / "sources"
    generate(GenerationSpec(out=sources, start=yesterday - timedelta(days=20), days=21, seed=3,
                            tickets_per_day=60))
    config = write_config(tmp_path, sources, **{
        "warehouse.kind": "postgres", "warehouse.schema_prefix": postgres_prefix,
        "delivery.weekly": [{"email": "ops@example.com", "name": "Ops", "locale": "en"}]})
    port = free_port()
    home = tmp_path / "airflow"
    database = f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{metadata_database}"
    env = {**os.environ,
           "AIRFLOW_HOME": str(home),
           "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
           "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
           "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database}",
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
           "AIRFLOW__API__PORT": str(port),
           "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
           "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
           "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
           "SERVICEPULSE_CONFIG": str(config),
           "SERVICEPULSE_REPORTING_TIMEZONE": "Asia/Shanghai"}

    def airflow(*arguments: str) -> None:
        done = subprocess.run([AIRFLOW, *arguments], env=env, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, f"airflow {' '.join(arguments)}:\n{done.stderr[-3000:]}"

    airflow("db", "migrate")
    airflow("pools", "set", "servicepulse_warehouse", "1", "one warehouse writer")
    logs = tmp_path / "logs"
    logs.mkdir()
    services = []
    for name, arguments in [("api-server", ["api-server", "--port", str(port)]),
                            ("scheduler", ["scheduler"]), ("dag-processor", ["dag-processor"]),
                            ("celery-worker", ["celery", "worker", "--concurrency", "2"])]:
        with open(logs / f"{name}.log", "w") as log:
            services.append(subprocess.Popen([AIRFLOW, *arguments], env=env, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True))
    try:
        _wait_for("the DAG processor to store every DAG", lambda: len(_query(
            metadata_database, "select dag_id from dag where dag_id like 'servicepulse_%'")) == 3,
            120, logs)
        airflow("dags", "unpause", "servicepulse_nightly")
        nightly = _wait_for("the scheduled nightly run to finish", lambda: _query(
            metadata_database, "select run_id, state, data_interval_start from dag_run where "
            "dag_id = 'servicepulse_nightly' and state in ('success', 'failed')"), 420, logs)
        assert [(run_id.split("__")[0], state) for run_id, state, _ in nightly] == \
            [("scheduled", "success")]
        assert nightly[0][2].astimezone(zone).date() == yesterday
        tasks = _query(metadata_database, "select task_id, state, hostname from task_instance "
                                          "where dag_id = 'servicepulse_nightly'")
        # Five loads, the raw checks, dbt, the mart checks, the corrective actions and
        # the owners' notices: every one ran on a Celery worker and succeeded.
        assert {task_id for task_id, _, _ in tasks} == {
            "load_crm_customers", "load_crm_tickets", "load_complaints",
            "load_survey_responses", "load_audits", "check_raw_data", "dbt_build",
            "check_marts", "track_actions", "send_action_notices"}
        assert {state for _, state, _ in tasks} == {"success"}
        scheduler_log = (logs / "scheduler.log").read_text(errors="replace")
        assert "for executor: CeleryExecutor" in scheduler_log
        assert "execute_workload" in (logs / "celery-worker.log").read_text(errors="replace")

        airflow("dags", "unpause", "servicepulse_weekly_report")
        _wait_for("the weekly report runs to finish", lambda: (runs := _query(
            metadata_database, "select state from dag_run where "
            "dag_id = 'servicepulse_weekly_report'")) and all(
            state in ("success", "failed") for (state,) in runs) and runs, 300, logs)
        weekly = _query(metadata_database, "select run_type, state from dag_run "
                                           "where dag_id = 'servicepulse_weekly_report'")
        assert {state for _, state in weekly} == {"success"}, weekly
        # Publishing fanned out: one mapped render-and-send task per audience (the
        # organisation in both languages), each run by a Celery worker.
        audiences = _query(metadata_database, "select rendered_map_index, state, hostname "
                                              "from task_instance where dag_id = "
                                              "'servicepulse_weekly_report' and task_id = "
                                              "'render_and_send_weekly_report' and "
                                              "map_index >= 0")
        assert sorted(name for name, _, _ in audiences) == ["organisation en",
                                                            "organisation zh-CN"]
        assert {state for _, state, _ in audiences} == {"success"}
        assert all(hostname for _, _, hostname in audiences)
    finally:
        for service in services:
            os.killpg(service.pid, signal.SIGTERM)
        for service in services:
            try:
                service.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(service.pid, signal.SIGKILL)
        redis_client.flushdb()

    settings = load_settings(config, environ={})
    with connected(settings) as warehouse:
        sent = ledger_rows(settings, warehouse, "weekly")
    assert [(r["recipient"], r["sequence"], r["status"]) for r in sent] == [
        ("ops@example.com", 0, "sent")]
    outbox = settings.output_path / "outbox" / "weekly" / sent[0]["period"]
    assert [p.name for p in outbox.glob("*.eml")] == ["ops@example.com.eml"]
    print(json.dumps({"weekly_runs": weekly}))
