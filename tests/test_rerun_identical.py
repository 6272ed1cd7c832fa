"""Re-runs are byte-identical (issue #27): re-running a night (loading the same day
again and building) three times gives the same `servicepulse kpis --format json`, to
the last digit, and the same weekly report PDFs, byte for byte, on DuckDB and on
PostgreSQL. Parallel or reordered float sums once moved a KPI in its 15th digit (TPS
21.9 -> 21.900000000000002); the KPI aggregate now sums exactly (see
int_kpi_observations_aggregated_to_periods)."""

from __future__ import annotations

import difflib
import json
from datetime import date, timedelta

import pytest

from servicepulse.cli import main
from servicepulse.demo.generate import GenerationSpec, generate
from tests.conftest import settings_for

# Four weeks from Monday 1 June 2026: a few thousand tickets on DuckDB (enough for its
# aggregation to run on several threads), fewer on PostgreSQL, whose dbt build is slow.
START = date(2026, 6, 1)
DAYS = 28
LAST_NIGHT = START + timedelta(days=DAYS - 1)
WEEK, MONTH = "2026-W24", "2026-06"
RERUNS = 3


def _cli(settings, *args: str, capsys) -> str:
    capsys.readouterr()
    assert main([*args, "--config", str(settings.config_file)]) == 0, args
    return capsys.readouterr().out


def _kpi_documents(settings, capsys) -> dict[str, str]:
    """The kpis JSON documents, as printed, of a week, a month and a week by department."""
    return {name: _cli(settings, "kpis", *args, "--format", "json", capsys=capsys)
            for name, args in (("week", ["--period", WEEK]),
                               ("month", ["--period", MONTH]),
                               ("week by department", ["--period", WEEK, "--by", "department"]))}


def _reports(settings, out, capsys) -> dict[str, bytes]:
    """The weekly report's PDFs in both locales."""
    pdfs = {}
    for locale in ("en", "zh-CN"):
        printed = _cli(settings, "report", "weekly", "--period", WEEK, "--locale", locale,
                       "--out", str(out / locale), capsys=capsys)
        path = printed.strip().removeprefix("wrote ")
        with open(path, "rb") as pdf:
            pdfs[locale] = pdf.read()
    return pdfs


def _night(settings, capsys) -> None:
    """The night of LAST_NIGHT: every source's partition of that day, then a build."""
    _cli(settings, "load", "all", "--date", LAST_NIGHT.isoformat(), capsys=capsys)
    _cli(settings, "build", capsys=capsys)


def _rerun_nights_identical(tmp_path, capsys, tickets_per_day: int, **overrides) -> None:
    sources = tmp_path / "sources"
    generate(GenerationSpec(out=sources, start=START, days=DAYS, seed=27,
                            tickets_per_day=tickets_per_day))
    settings = settings_for(tmp_path / "run", sources, **overrides)
    _night(settings, capsys)               # the first load backfills every earlier day
    documents = _kpi_documents(settings, capsys)
    reports = _reports(settings, tmp_path / "first", capsys)
    parsed = json.loads(documents["week"])
    assert parsed["kpis"]["TPS"]["value"] is not None       # audits were summed
    assert parsed["kpis"]["TICKETS"]["value"] > 0
    for rerun in range(1, RERUNS + 1):
        _night(settings, capsys)
        again = _kpi_documents(settings, capsys)
        for name, document in documents.items():
            changed = [line for line in difflib.unified_diff(
                document.splitlines(), again[name].splitlines(), lineterm="", n=0)
                if line[:1] in "+-" and line[:3] not in ("+++", "---")]
            assert again[name] == document, f"re-run {rerun}: kpis {name} changed: {changed}"
    for locale, pdf in _reports(settings, tmp_path / "last", capsys).items():
        assert pdf == reports[locale], f"weekly report ({locale}) changed after {RERUNS} re-runs"


def test_rerun_nights_identical_on_duckdb(tmp_path, capsys):
    _rerun_nights_identical(tmp_path, capsys, tickets_per_day=150)


@pytest.mark.postgres
def test_rerun_nights_identical_on_postgres(tmp_path, capsys, postgres_prefix):
    _rerun_nights_identical(tmp_path, capsys, tickets_per_day=25,
                            **{"warehouse.kind": "postgres",
                               "warehouse.schema_prefix": postgres_prefix})
