"""A build with nothing new skips dbt; anything the marts are built from rebuilds them
(servicepulse.build_inputs)."""

from __future__ import annotations

import shutil

import pytest

from servicepulse import build_inputs, transform
from servicepulse.paths import DBT_PROJECT_DIR
from servicepulse.transform import TransformError, build
from servicepulse.warehouse import connected


def _kpi_rows(settings) -> list[tuple]:
    with connected(settings, read_only=True) as warehouse:
        frame = warehouse.fetch_frame(
            'select * from "marts"."kpi_weekly" order by period_start, dimension, '
            "dimension_value, kpi_id")
    return [tuple(row) for row in frame.astype(str).itertuples(index=False)]


def _refuse_dbt(monkeypatch) -> None:
    def refused(*arguments, **options):
        raise AssertionError(f"dbt ran: {arguments}")

    monkeypatch.setattr(transform, "run_dbt", refused)


def _new_version_of_one_ticket(settings) -> None:
    with connected(settings) as warehouse:
        warehouse.execute(
            "update raw.crm_tickets set _loaded_at = _loaded_at + interval '1 hour' "
            "where ticket_id = (select min(ticket_id) from raw.crm_tickets)")


def test_a_build_with_nothing_new_skips_dbt_and_keeps_the_marts(copy_of_known_answers,
                                                                tmp_path, monkeypatch):
    settings = copy_of_known_answers(tmp_path / "copy")
    before = _kpi_rows(settings)
    _refuse_dbt(monkeypatch)

    result = build(settings)

    assert "nothing to build" in result.summary["skipped"]
    assert _kpi_rows(settings) == before


def test_a_new_version_of_one_row_rebuilds_and_is_then_remembered(copy_of_known_answers,
                                                                 tmp_path, monkeypatch):
    settings = copy_of_known_answers(tmp_path / "copy")
    with connected(settings) as warehouse:
        first = build_inputs.last_built_from(settings, warehouse)
    _new_version_of_one_ticket(settings)

    result = build(settings)

    assert "skipped" not in result.summary and result.summary["nodes"] > 0
    with connected(settings) as warehouse:
        second = build_inputs.last_built_from(settings, warehouse)
    assert second[0] != first[0] and second[1] > first[1]
    _refuse_dbt(monkeypatch)
    assert build(settings).summary["skipped"]


def test_a_failed_build_leaves_nothing_the_next_night_could_skip_over(
        copy_of_known_answers, tmp_path, monkeypatch):
    settings = copy_of_known_answers(tmp_path / "copy")
    _new_version_of_one_ticket(settings)

    def broken(*arguments, **options):
        raise TransformError("dbt build failed half-way")

    monkeypatch.setattr(transform, "run_dbt", broken)
    with pytest.raises(TransformError):
        build(settings)
    with connected(settings) as warehouse:
        assert build_inputs.last_built_from(settings, warehouse) is None
    monkeypatch.undo()
    assert "skipped" not in build(settings).summary


def test_a_full_refresh_is_never_skipped(copy_of_known_answers, tmp_path):
    settings = copy_of_known_answers(tmp_path / "copy")
    result = build(settings, full_refresh=True)
    assert "skipped" not in result.summary and result.summary["nodes"] > 0


def test_only_sources_that_feed_a_table_count(known_answers_built):
    manifest = known_answers_built.output_path / "dbt" / "duckdb-target" / "manifest.json"
    tables = build_inputs.sources_feeding_tables(manifest)
    assert ("raw", "crm_tickets") in tables and ("raw", "survey_responses") in tables
    # The corrective-actions tables are read live by views: editing an action during
    # the day needs no rebuild of the marts.
    assert not [table for schema, table in tables if schema == "actions"]
    assert build_inputs.sources_feeding_tables(manifest.with_name("absent.json")) is None


def test_the_project_digest_follows_the_files_dbt_reads_not_its_output(tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, symlinks=True,
                    ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    digest = build_inputs.project_digest(project)
    (project / "target").mkdir()
    (project / "target" / "manifest.json").write_text("{}")
    assert build_inputs.project_digest(project) == digest
    model = project / "models" / "marts" / "kpi" / "kpi_weekly.sql"
    model.write_text(model.read_text() + "\n-- a comment is a change too\n")
    assert build_inputs.project_digest(project) != digest
