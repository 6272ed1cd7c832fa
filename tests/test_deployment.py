"""docker-compose.yml cannot run here (no Docker engine), so check what can be
checked: it parses, its services run real Airflow commands from our image, and its
environment means what the code thinks it means."""

from __future__ import annotations

import re
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
