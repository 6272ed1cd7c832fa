"""The dbt project stands on its own: a data engineer who runs plain `dbt build` on a
warehouse holding only raw tables gets what `servicepulse build` gives (the business
calendar included, built by dbt from its seed), and `dbt source freshness` reports
every source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from servicepulse import business_calendar
from servicepulse.settings import CalendarSettings
from servicepulse.transform import DBT_PROJECT_DIR

RAW_TABLES = ("crm_customers", "crm_tickets", "complaints", "survey_responses", "audits")
MARTS = ("dim_dates", "fct_tickets", "fct_complaints", "kpi_daily", "kpi_weekly",
         "kpi_monthly", "kpi_complaint_priority_weekly")


def _plain_dbt(tmp_path: Path, warehouse: Path, *arguments: str) -> subprocess.CompletedProcess:
    """dbt as a data engineer runs it: the project's profile, no vars, only the file."""
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "SERVICEPULSE_DUCKDB_PATH": str(warehouse),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.pop("SERVICEPULSE_DBT_TARGET", None)
    return subprocess.run(
        [str(dbt), *arguments, "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs"), "--no-use-colors"],
        check=False, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True,
        timeout=600)


def _rows(connection, table: str) -> list[tuple]:
    columns = [name for (name,) in connection.execute(
        "select column_name from information_schema.columns where table_schema = 'marts' "
        "and table_name = ? and column_name not in ('built_at') order by column_name",
        [table]).fetchall()]
    quoted = ", ".join(f'"{c}"' for c in columns)
    return sorted(connection.execute(f"select {quoted} from marts.{table}").fetchall(),
                  key=repr)


def _built_manifest(folder: Path, warehouse: Path) -> dict:
    """dbt's manifest of a plain build of the file (built here when no test built it yet)."""
    if not (folder / "target" / "manifest.json").exists():
        assert _plain_dbt(folder, warehouse, "build").returncode == 0
    return json.loads((folder / "target" / "manifest.json").read_text())


@pytest.fixture(scope="module")
def only_raw_tables(tmp_path_factory, known_answers_built):
    """A new DuckDB file holding nothing but the known-answer raw tables, as loaded."""
    folder = tmp_path_factory.mktemp("only-raw")
    warehouse = folder / "raw-only.duckdb"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(f"attach '{known_answers_built.duckdb_path}' as built (read_only)")
        connection.execute("create schema raw")
        for table in RAW_TABLES:
            connection.execute(f"create table raw.{table} as select * from built.raw.{table}")
    return folder, warehouse


def test_plain_dbt_build_on_raw_tables_gives_servicepulse_s_marts(only_raw_tables,
                                                                  known_answers_built):
    folder, warehouse = only_raw_tables
    built = _plain_dbt(folder, warehouse, "build")
    assert built.returncode == 0, built.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as plain, \
            duckdb.connect(str(known_answers_built.duckdb_path), read_only=True) as product:
        for table in MARTS:
            rows = _rows(plain, table)
            assert rows, table
            assert rows == _rows(product, table), table
        # The calendar spans the data's years, read in UTC (the first customer came at
        # 2025-01-01 00:00 +08:00, 2024 in UTC), to the year after the newest (tickets of
        # 2026: deadlines run on), with China's holidays from the seed.
        first, last, holiday, worked = plain.execute(
            "select min(calendar_date), max(calendar_date), "
            "max(case when calendar_date = date '2026-10-01' then day_kind end), "
            "max(case when calendar_date = date '2026-10-10' then day_kind end) "
            "from marts.dim_dates").fetchone()
    assert (str(first), str(last)) == ("2024-01-01", "2027-12-31")
    assert (holiday, worked) == ("public_holiday", "adjusted_workday")


def test_every_model_seed_and_source_column_is_described(only_raw_tables):
    """dbt docs: every model, seed and source of the project, and every column the
    warehouse holds for it, has a description, so a reader of the warehouse never meets
    an unexplained column (columns that recur are described once, in models/_columns.md)."""
    import shutil

    from servicepulse.actions.store import DDL

    folder, built_file = only_raw_tables
    manifest = _built_manifest(folder, built_file)
    # The actions source is not loaded but written by servicepulse itself (the nightly's
    # tracking, the app): its tables, as servicepulse creates them, in a copy.
    warehouse = folder / "with-actions.duckdb"
    shutil.copyfile(built_file, warehouse)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("create schema if not exists actions")
        for name, columns in DDL.items():
            connection.execute(f'create table if not exists actions."{name}" ({columns})')
    nodes = [node for node in [*manifest["nodes"].values(), *manifest["sources"].values()]
             if node["package_name"] == "servicepulse"
             and node["resource_type"] in ("model", "seed", "source")]
    assert {node["resource_type"] for node in nodes} == {"model", "seed", "source"}
    undescribed = []
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        for node in nodes:
            table = node["identifier"] if node["resource_type"] == "source" else \
                node["alias"] or node["name"]
            built = [name for (name,) in connection.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?", [node["schema"], table]).fetchall()]
            assert built, f"{node['unique_id']} is not in the warehouse"
            described = {name for name, column in node["columns"].items()
                         if column.get("description", "").strip()}
            if not node.get("description", "").strip():
                undescribed.append(node["unique_id"])
            undescribed += [f"{node['unique_id']}.{name}" for name in built
                            if name not in described]
    assert not undescribed, f"{len(undescribed)} without a description: {undescribed}"


# dbt_project.yml's order: a model reads only models of its own folder or of one above.
BUILD_ORDER = ("staging", "intermediate", "marts/core", "marts/kpi/intermediate", "marts/kpi")


def test_model_folders_are_in_build_order(only_raw_tables):
    folder, warehouse = only_raw_tables
    manifest = _built_manifest(folder, warehouse)
    models = {node["unique_id"]: node for node in manifest["nodes"].values()
              if node["resource_type"] == "model" and node["package_name"] == "servicepulse"}

    def rank(node) -> int:
        """The build folder the model is in (staging/crm counts as staging)."""
        directory = Path(node["original_file_path"]).parent.relative_to("models").as_posix()
        folders = [folder for folder in BUILD_ORDER
                   if directory == folder or directory.startswith(folder + "/")]
        assert folders, f"{node['name']} is in {directory}, no build folder"
        return BUILD_ORDER.index(max(folders, key=len))

    upward = [f"{node['name']} ({BUILD_ORDER[rank(node)]}) reads {models[parent]['name']} "
              f"({BUILD_ORDER[rank(models[parent])]})"
              for node in models.values() for parent in node["depends_on"]["nodes"]
              if parent in models and rank(models[parent]) > rank(node)]
    assert not upward, upward
    assert {BUILD_ORDER[rank(node)] for node in models.values()} == set(BUILD_ORDER)


def test_source_freshness_reports_every_source(only_raw_tables):
    folder, warehouse = only_raw_tables
    with duckdb.connect(str(warehouse)) as connection:      # audits stopped 4 days ago
        connection.execute("update raw.audits set _loaded_at = now() - interval 4 day")
    checked = _plain_dbt(folder, warehouse, "source", "freshness")
    assert checked.returncode == 1, checked.stdout[-3000:]  # an error-level staleness
    results = json.loads((folder / "target" / "sources.json").read_text())["results"]
    status = {result["unique_id"].rsplit(".", 1)[-1]: result["status"] for result in results}
    assert status == {"crm_customers": "pass", "crm_tickets": "pass", "complaints": "pass",
                      "survey_responses": "pass", "audits": "error"}


def test_dbt_project_evaluator_finds_nothing_but_the_listed_exceptions(tmp_path):
    """dbt Labs' best-practice checks (vendored, dbt_project/vendor/) pass with every
    finding an error; what the project keeps on purpose is listed, each with its reason,
    in seeds/dbt_project_evaluator_exceptions.csv."""
    from servicepulse.transform import install_dbt_packages

    install_dbt_packages()
    checked = _plain_dbt(tmp_path, tmp_path / "evaluation.duckdb", "build", "--select",
                         "package:dbt_project_evaluator", "dbt_project_evaluator_exceptions",
                         "--vars", '{"evaluate_project": true}')
    findings = [line for line in checked.stdout.splitlines() if " FAIL " in line
                or " ERROR " in line]
    assert checked.returncode == 0, "\n".join(findings) or checked.stdout[-3000:]
    assert "PASS=" in checked.stdout and " ERROR=0" in checked.stdout
    with open(DBT_PROJECT_DIR / "seeds" / "dbt_project_evaluator_exceptions.csv",
              encoding="utf-8") as handle:
        import csv

        exceptions = list(csv.DictReader(handle))
    assert exceptions and all(len(row["comment"]) > 40 for row in exceptions)


def test_the_committed_holiday_seed_is_what_the_holidays_package_says(tmp_path):
    """A newer holidays package (a government moves a holiday) shows here: renew the
    seed with `servicepulse calendar --country XX` for each country it holds."""
    committed = business_calendar.read_seed()
    countries = sorted({(row["country"], row["subdivision"]) for row in committed})
    assert ("CN", "") in countries and ("US", "") in countries
    fresh = tmp_path / "public_holidays.csv"
    for country, subdivision in countries:
        business_calendar.write_seed(CalendarSettings(country=country,
                                                      subdivision=subdivision or None), fresh)
    assert fresh.read_text(encoding="utf-8") == business_calendar.SEED.read_text(
        encoding="utf-8")


def test_a_country_missing_from_the_seed_stops_the_build_with_the_command(tmp_path, capsys):
    from servicepulse.cli import main
    from tests.conftest import write_config

    config = write_config(tmp_path, tmp_path, **{"calendar.country": "DE"})
    assert main(["build", "--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert "no public holidays for DE" in error
    assert "servicepulse calendar --country DE" in error
    assert "Traceback" not in error
