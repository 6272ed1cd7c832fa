import pytest

from servicepulse.settings import ConfigError, load_settings
from tests.conftest import write_config


def test_environment_overrides_nested_keys(tmp_path):
    path = write_config(tmp_path, tmp_path)
    settings = load_settings(path, environ={"SERVICEPULSE__WAREHOUSE__KIND": "postgres",
                                            "SERVICEPULSE__WAREHOUSE__POSTGRES__PORT": "6543"})
    assert settings.warehouse.kind == "postgres"
    assert settings.warehouse.postgres.port == 6543


def test_error_names_the_key_and_what_was_expected(tmp_path):
    path = write_config(tmp_path, tmp_path, **{"warehouse.kind": "mysql"})
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert "warehouse.kind" in str(error.value)
    assert "'duckdb' or 'postgres'" in str(error.value)
    assert "mysql" in str(error.value)


def test_unknown_key_and_unknown_time_zone(tmp_path):
    path = write_config(tmp_path, tmp_path, reporting_timezone="Asia/Peking",
                        **{"warehouse.duckdb_pth": "x"})
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert "reporting_timezone" in str(error.value) and "Asia/Peking" in str(error.value)
    assert "warehouse.duckdb_pth: unknown key" in str(error.value)


def test_secrets_are_refused_in_yaml(tmp_path):
    path = write_config(tmp_path, tmp_path, **{"warehouse.postgres.password": "hunter2"})
    with pytest.raises(ConfigError, match="secrets belong in environment"):
        load_settings(path, environ={})


def test_password_comes_from_the_environment_only(tmp_path, monkeypatch):
    settings = load_settings(write_config(tmp_path, tmp_path), environ={})
    monkeypatch.setenv("SERVICEPULSE_PG_PASSWORD", "s3cret")
    assert "password=s3cret" in settings.warehouse.postgres.dsn()


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    path = write_config(tmp_path, tmp_path, output_dir="out")
    assert load_settings(path, environ={}).output_path == (tmp_path / "out").resolve()


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_calendar_country_and_years_are_checked(tmp_path):
    path = write_config(tmp_path, tmp_path, **{"calendar.country": "XX",
                                               "calendar.first_year": 2031})
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert "calendar.country" in str(error.value) and "'XX'" in str(error.value)
    path = write_config(tmp_path, tmp_path, **{"calendar.first_year": 2031,
                                               "calendar.last_year": 2030})
    with pytest.raises(ConfigError, match="first_year 2031 is after last_year 2030"):
        load_settings(path, environ={})


def test_business_calendar_knows_china_s_adjusted_working_days():
    from datetime import date

    from servicepulse.business_calendar import calendar_days
    from servicepulse.settings import CalendarSettings

    days = {d.calendar_date: d for d in calendar_days(CalendarSettings(first_year=2026,
                                                                       last_year=2026))}
    assert len(days) == 365
    assert days[date(2026, 10, 1)].day_kind == "public_holiday"
    assert not days[date(2026, 10, 7)].is_working_day          # a substituted day off
    assert days[date(2026, 10, 10)].day_kind == "adjusted_workday"  # Saturday, worked
    assert days[date(2026, 10, 10)].is_working_day
    assert days[date(2026, 10, 11)].day_kind == "weekend"
    assert days[date(2026, 10, 12)].day_kind == "workday"


def test_postgres_session_settings_reach_every_connection_and_refuse_injection(tmp_path):
    """warehouse.postgres.session_settings: dbt's connections (PGOPTIONS), ServicePulse's
    own (the DSN's options) and the quality gate's take the same parameters."""
    from servicepulse.quality.runner import connection_string
    from servicepulse.transform import dbt_environment

    path = write_config(tmp_path, tmp_path, **{
        "warehouse.kind": "postgres",
        "warehouse.postgres.session_settings": {"work_mem": "64MB",
                                                "max_parallel_workers_per_gather": "0"}})
    settings = load_settings(path, environ={})
    options = settings.warehouse.postgres.libpq_options()
    assert sorted(options.split()) == \
        ["-c", "-c", "max_parallel_workers_per_gather=0", "work_mem=64MB"]
    assert settings.warehouse.postgres.dsn().endswith(f"options='{options}'")
    assert dbt_environment(settings)["PGOPTIONS"].endswith(options)
    assert options in connection_string(settings, "marts")[1]["connect_args"]["options"]
    assert load_settings(write_config(tmp_path, tmp_path), environ={}) \
        .warehouse.postgres.session_settings == {"work_mem": "256MB", "jit": "off"}

    for bad in ({"work_mem": "64MB -c log_statement=all"}, {"work mem": "64MB"}):
        path = write_config(tmp_path, tmp_path, **{
            "warehouse.postgres.session_settings": bad})
        with pytest.raises(ConfigError, match="session_settings"):
            load_settings(path, environ={})
