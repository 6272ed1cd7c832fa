"""docker-compose.yml cannot be started here (no image registry), so check what can be
checked: Debian's docker-compose accepts it and refuses an empty secret, its services
run real Airflow commands from our image with one shared key set, a login, logs and
health checks, and its environment means what the code thinks it means."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from servicepulse.constants import WAREHOUSE_POOL
from servicepulse.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker"]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_of_a_celery_deployment(compose):
    services = compose["services"]
    assert {"postgres", "redis", "mailpit", "airflow-init", *AIRFLOW_SERVICES} <= set(services)
    for name in AIRFLOW_SERVICES + ["airflow-init"]:
        assert services[name]["image"] == "servicepulse:0.1.0"
        assert services[name]["build"] == "."
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_commands_are_real_airflow_subcommands(compose):
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for name in AIRFLOW_SERVICES:
        command = compose["services"][name]["command"].split()
        assert command[0] == "airflow"
        parser.parse_args(command[1:])  # raises SystemExit on an unknown command
    # The executor itself must load (celery 5.7 broke the provider's import of it).
    from airflow.providers.celery.executors.celery_executor import CeleryExecutor  # noqa: F401


def test_celery_result_backend_names_an_installed_driver(compose):
    """`db+postgresql://` makes SQLAlchemy pick a driver the image may not have
    (psycopg 3 was asked for and missing); name psycopg2, which the lock installs."""
    backend = compose["services"]["airflow-worker"]["environment"][
        "AIRFLOW__CELERY__RESULT_BACKEND"]
    assert backend.startswith("db+postgresql+psycopg2://")
    import psycopg2  # noqa: F401


def test_environment_matches_the_settings_and_the_dag(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/servicepulse/dags"
    config = env["SERVICEPULSE_CONFIG"].replace("/opt/servicepulse/", "")
    settings = load_settings(ROOT / config, environ={})
    assert settings.warehouse.kind == "postgres"
    assert settings.warehouse.postgres.host == "postgres"
    assert env["SERVICEPULSE_REPORTING_TIMEZONE"] == settings.reporting_timezone
    assert env["SERVICEPULSE_START_DATE"] == settings.schedule.start_date.isoformat()
    assert f"pools set {WAREHOUSE_POOL} " in compose["services"]["airflow-init"]["command"][1]


def test_reports_are_mailed_through_the_compose_smtp_connection(compose, monkeypatch):
    from servicepulse.delivery.transport import smtp_endpoint

    env = compose["services"]["airflow-worker"]["environment"]
    settings = load_settings(ROOT / env["SERVICEPULSE_CONFIG"].replace("/opt/servicepulse/", ""),
                             environ={})
    assert settings.delivery.transport == "smtp"
    connection_id = settings.delivery.smtp.connection_id
    uri = re.fullmatch(r"\$\{\w+:-(.+)\}", env[f"AIRFLOW_CONN_{connection_id.upper()}"])[1]
    endpoint = smtp_endpoint(settings.delivery.smtp, environ={})  # no connection: fallback
    assert (endpoint.host, endpoint.port) == ("mailpit", 1025)
    monkeypatch.setenv(f"AIRFLOW_CONN_{connection_id.upper()}", uri)
    endpoint = smtp_endpoint(settings.delivery.smtp, environ={})
    assert (endpoint.host, endpoint.port, endpoint.security) == ("mailpit", 1025, "none")
    assert endpoint.port in compose["services"]["mailpit"]["expose"]


def test_image_installs_the_lock_with_the_same_tools():
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "uv sync --locked --no-dev" in dockerfile
    uv_in_image = re.search(r"ARG UV_VERSION=([\d.]+)", dockerfile).group(1)
    assert uv_in_image == re.search(r"UV_VERSION := ([\d.]+)", makefile).group(1)
    python = re.search(r"FROM python:(\d+\.\d+)", dockerfile).group(1)
    assert f">={python}" in project["requires-python"]
    for folder in ("src", "dags", "dbt_project", "expectations", "report_templates", "config"):
        assert f"COPY --chown=servicepulse {folder} " in dockerfile


SECRETS = ("AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_FERNET_KEY",
           "AIRFLOW_DB_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "SERVICEPULSE_PG_PASSWORD")


def _compose_config(env_file: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is missing: `make setup` installs it (system-deps)")
        pytest.skip("docker-compose is not installed (make setup installs it)")
    environment = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run([binary, "--env-file", str(env_file), "-f",
                           str(ROOT / "docker-compose.yml"), "config", "-q"], check=False,
                          capture_output=True, text=True, env=environment, cwd=ROOT)


def test_docker_compose_accepts_the_file_and_refuses_an_empty_secret(tmp_path):
    example = (ROOT / ".env.example").read_text()
    for name in SECRETS:  # .env.example lists every one, empty: no default password
        assert re.search(rf"^{name}=$", example, re.MULTILINE), name
    filled = tmp_path / "filled.env"
    filled.write_text("".join(f"{name}=value-of-{name.lower()}\n" for name in SECRETS))
    accepted = _compose_config(filled)
    assert accepted.returncode == 0, accepted.stderr
    for missing in SECRETS:
        partial = tmp_path / f"without-{missing}.env"
        partial.write_text("".join(f"{name}=x\n" for name in SECRETS if name != missing))
        refused = _compose_config(partial)
        assert refused.returncode != 0 and f"set {missing} in .env" in refused.stderr, missing


def test_no_silent_default_secret(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    defaults = re.findall(r"\$\{(\w+):-", text)
    assert not [name for name in defaults if re.search(r"PASSWORD|SECRET|KEY", name)]


def test_every_airflow_component_shares_one_key_set_a_login_and_the_logs(compose):
    services = compose["services"]
    for name in AIRFLOW_SERVICES + ["airflow-init"]:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__FERNET_KEY"].startswith("${AIRFLOW_FERNET_KEY:?")
        assert env["AIRFLOW__API__SECRET_KEY"].startswith("${AIRFLOW_API_SECRET_KEY:?")
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET:?")
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
        assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"
        volumes = services[name]["volumes"]
        assert "airflow-logs:/opt/airflow/logs" in volumes
        assert env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] == "/opt/airflow/logs"
        passwords = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
        assert any(v.startswith("airflow-auth:") and passwords.startswith(v.split(":")[1])
                   for v in volumes)
        # Recipients and targets change without a rebuild: the settings are mounted.
        assert "./config:/opt/servicepulse/config:ro" in volumes
        assert env["SERVICEPULSE_CONFIG"].startswith("/opt/servicepulse/config/")
    init = services["airflow-init"]
    assert init["environment"]["AIRFLOW_ADMIN_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    assert 'os.environ["AIRFLOW_ADMIN_PASSWORD"]' in init["command"][1]


def test_every_long_running_service_has_a_health_check(compose):
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for name, service in compose["services"].items():
        if name == "airflow-init":
            continue  # a job, not a service
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name
        if test[0] == "CMD-SHELL" and test[1].startswith("airflow "):
            parser.parse_args(test[1].split()[1:])  # a real Airflow command
    kinds = {name: compose["services"][name]["healthcheck"]["test"][1]
             for name in ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")}
    assert "SchedulerJob" in kinds["airflow-scheduler"]
    assert "DagProcessorJob" in kinds["airflow-dag-processor"]
    assert "TriggererJob" in kinds["airflow-triggerer"]
    assert "inspect ping" in compose["services"]["airflow-worker"]["healthcheck"]["test"][1]


def test_the_warehouse_pool_has_the_slots_of_its_warehouse(compose):
    """The compose deployment (PostgreSQL) creates the pool the DAGs' warehouse tasks
    take with the number the code owns (constants.WAREHOUSE_POOL_SLOTS)."""
    from servicepulse.constants import WAREHOUSE_POOL_SLOTS

    init = compose["services"]["airflow-init"]["command"][1]
    (slots,) = re.findall(rf"pools set {WAREHOUSE_POOL} (\d+)", init)
    assert int(slots) == WAREHOUSE_POOL_SLOTS["postgres"]
