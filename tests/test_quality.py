"""The quality gate on the known-answer data: clean passes, injected defects are
caught with their exact count, critical stops, warning lets through."""

from __future__ import annotations

from datetime import timedelta

import pytest

from servicepulse.load import load_source
from servicepulse.quality.runner import QualityGateError, gate, run_checks, store_results
from servicepulse.warehouse import connected
from tests import known_answers
from tests.conftest import settings_for
from tests.kpi_harness import UNTIL, load_and_build


def _inject_out_of_range_satisfaction(settings) -> None:
    """Two answers with satisfaction 7 (the scale is 1–5): a defect the loader's
    contract (whole numbers) lets through and the range expectation must catch."""
    path = settings.sources_dir / "surveys.csv"
    text = path.read_text()
    text = text.replace("S1,T1,,C1,2026-11-16T14:00:00+08:00,2026-11-16T15:00:00+08:00,5,",
                        "S1,T1,,C1,2026-11-16T14:00:00+08:00,2026-11-16T15:00:00+08:00,7,")
    text = text.replace("S5,,P1,C2,2026-11-18T12:00:00+08:00,2026-11-19T10:00:00+08:00,3,",
                        "S5,,P1,C2,2026-11-18T12:00:00+08:00,2026-11-19T10:00:00+08:00,7,")
    path.write_text(text)
    with connected(settings) as warehouse:
        load_source(settings, warehouse, "survey_responses", UNTIL, UNTIL, full_refresh=True)


def _check(report, name):
    return next(r for r in report.results if f"{r.suite}.{r.check}" == name)


def _run(settings, run_id):
    report = run_checks(settings, run_id, UNTIL - timedelta(days=1), UNTIL)
    with connected(settings) as warehouse:
        store_results(settings, warehouse, report)
    return report


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def built(request, tmp_path):
    # The hand-made data set is a few rows on a few days: freshness and volume are
    # exercised on generated data in test_quality_defects.py.
    overrides = {"quality.freshness_lag_hours": {}}
    if request.param == "duckdb":
        return request.getfixturevalue("copy_of_known_answers")(tmp_path, **overrides)
    prefix = request.getfixturevalue("postgres_prefix")
    overrides |= {"warehouse.kind": "postgres", "warehouse.schema_prefix": prefix}
    settings = settings_for(tmp_path, known_answers.write(tmp_path / "sources"), **overrides)
    load_and_build(settings, UNTIL)
    return settings


def test_clean_data_passes_every_check(built):
    report = _run(built, "clean")
    assert len(report.results) > 40
    assert [r for r in report.results if not r.success] == []
    gate(report)  # does not raise


def test_critical_defect_stops_with_the_check_and_count(built):
    _inject_out_of_range_satisfaction(built)
    report = _run(built, "defect")
    failed = _check(report, "raw_survey_responses.satisfaction_range")
    assert not failed.success and failed.unexpected_count == 2
    assert failed.failing_sample == ["S1", "S5"]  # the keys of the failing rows
    assert [f"{r.suite}.{r.check}" for r in report.critical_failures] == [
        "raw_survey_responses.satisfaction_range"]
    with pytest.raises(QualityGateError) as error:
        gate(report)
    assert "raw_survey_responses.satisfaction_range: 2 unexpected row(s)" in str(error.value)
    with connected(built) as warehouse:
        stored = warehouse.fetch_frame(
            f'select check_name, unexpected_count from '
            f'"{built.warehouse.schema("quality")}"."check_results" '
            f"where run_id = 'defect' and not success")
    assert stored.to_dict(orient="records") == [
        {"check_name": "satisfaction_range", "unexpected_count": 2}]


def test_warning_severity_lets_the_run_through_and_is_reported(built, tmp_path):
    _inject_out_of_range_satisfaction(built)
    relaxed = settings_for(
        tmp_path, built.sources_dir,
        **{"quality.freshness_lag_hours": {},
           "warehouse.kind": built.warehouse.kind,
           "warehouse.schema_prefix": built.warehouse.schema_prefix,
           "warehouse.duckdb_path": str(built.duckdb_path),
           "quality.severities": {"raw_survey_responses.satisfaction_range": "warning"}})
    report = _run(relaxed, "warned")
    assert report.critical_failures == []
    assert [f"{r.suite}.{r.check}" for r in report.warnings] == [
        "raw_survey_responses.satisfaction_range"]
    gate(report)  # warnings do not stop publishing


def test_a_check_task_logs_the_checks_not_the_library(built):
    """A check task's log is what the checks found: importing GX registers every
    expectation class with an INFO line (214 of 228 lines), kept out of the log."""
    import subprocess
    import sys

    script = (
        "import logging, sys\n"
        "from datetime import timedelta\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr,\n"
        "                    format='%(name)s %(levelname)s %(message)s')\n"
        "from servicepulse.quality.runner import run_checks\n"
        "from servicepulse.settings import load_settings\n"
        "from tests.kpi_harness import UNTIL\n"
        "report = run_checks(load_settings(sys.argv[1]), 'quiet', UNTIL - timedelta(days=1),"
        " UNTIL)\n"
        "print(len(report.results))\n")
    done = subprocess.run([sys.executable, "-c", script, str(built.config_file)],
                          capture_output=True, text=True, check=True, timeout=300)
    assert int(done.stdout.strip().splitlines()[-1]) > 40  # the checks did run
    library = [line for line in done.stderr.splitlines()
               if line.startswith("great_expectations") and " INFO " in line]
    assert library == [], library[:3]
