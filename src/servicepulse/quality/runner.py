"""Run every suite in ``expectations/`` as one Great Expectations checkpoint.

The checks run as SQL inside the warehouse (DuckDB through the buffered dialect,
PostgreSQL through psycopg2). Each check's outcome is written three ways so that
no failure disappears: the GX validation result as JSON in ``output/quality/``, a
row per check in the warehouse table ``quality.check_results``, and the log. A
failed critical check raises QualityGateError naming every failed check.
"""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pandas as pd

from servicepulse.settings import PROJECT_ROOT, Settings
from servicepulse.warehouse import Warehouse

log = logging.getLogger(__name__)
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
RESULT_COLUMNS = [
    ("run_id", "VARCHAR"), ("checked_at", "TIMESTAMPTZ"), ("suite", "VARCHAR"),
    ("check_name", "VARCHAR"), ("severity", "VARCHAR"), ("success", "BOOLEAN"),
    ("unexpected_count", "BIGINT"), ("observed_value", "VARCHAR"), ("failing_sample", "VARCHAR"),
]


class QualityGateError(RuntimeError):
    """A critical data-quality check failed: publishing must stop."""

    def __init__(self, failures: list[CheckResult], result_file: Path) -> None:
        lines = [f"- {f.suite}.{f.check}: {f.describe()}" for f in failures]
        super().__init__(f"{len(failures)} critical data-quality check(s) failed "
                         f"(details: {result_file}):\n" + "\n".join(lines))
        self.failures = failures
        self.result_file = result_file


@dataclass(frozen=True)
class CheckResult:
    suite: str
    check: str
    severity: str
    success: bool
    unexpected_count: int | None
    observed_value: str | None
    failing_sample: list[Any]

    def describe(self) -> str:
        parts = []
        if self.unexpected_count is not None:
            parts.append(f"{self.unexpected_count} unexpected row(s)")
        if self.observed_value not in (None, "None"):
            parts.append(f"observed {self.observed_value}")
        if self.failing_sample:
            parts.append(f"sample {self.failing_sample[:5]}")
        return "; ".join(parts) or "failed"


@dataclass(frozen=True)
class QualityReport:
    run_id: str
    result_file: Path
    results: list[CheckResult]

    @property
    def critical_failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "critical"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "warning"]

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "checks": len(self.results),
                "passed": sum(r.success for r in self.results),
                "critical_failures": [f"{r.suite}.{r.check}" for r in self.critical_failures],
                "warnings": [f"{r.suite}.{r.check}" for r in self.warnings],
                "result_file": str(self.result_file)}


def suite_modules() -> list[Any]:
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    names = sorted(m.name for m in pkgutil.iter_modules([str(EXPECTATIONS_DIR)])
                   if not m.name.startswith("_"))
    return [importlib.import_module(f"expectations.{name}") for name in names]


def connection_string(settings: Settings) -> tuple[str, dict[str, Any]]:
    if settings.warehouse.kind == "duckdb":
        from servicepulse.quality.duckdb_dialect import register

        register()
        # Same connection configuration as the pipeline's own: DuckDB lets one
        # process open a file several times only with identical settings.
        return f"duckdb+buffered:///{settings.duckdb_path}", {}
    pg = settings.warehouse.postgres
    password = f":{quote_plus(pg.password)}" if pg.password else ""
    url = (f"postgresql+psycopg2://{quote_plus(pg.user)}{password}@{pg.host}:{pg.port}/"
           f"{pg.dbname}")
    return url, {}


def run_checks(settings: Settings, run_id: str) -> QualityReport:
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    url, engine_kwargs = connection_string(settings)
    datasource = context.data_sources.add_sql(name="warehouse", connection_string=url,
                                              kwargs=engine_kwargs)
    definitions = []
    for module in suite_modules():
        suite = context.suites.add(module.build_suite())
        # A query asset, not a table asset: GX 1.x drops a table asset's schema on
        # some dialects (schema_name is deprecated), and a query names it exactly.
        table = f'"{settings.warehouse.schema(module.SCHEMA)}"."{module.TABLE}"'
        asset = datasource.add_query_asset(name=suite.name, query=f"select * from {table}")
        batch = asset.add_batch_definition_whole_table("whole_table")
        definitions.append(context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name="servicepulse_nightly", validation_definitions=definitions,
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10}))
    try:
        outcome = checkpoint.run()
    finally:
        # Release the warehouse: DuckDB allows one writer, and the next task writes.
        datasource.get_engine().dispose()

    results = []
    for validation in outcome.run_results.values():
        suite_name = validation.suite_name
        for item in validation.results:
            results.append(_check_result(settings, suite_name, item))
    out_dir = settings.output_path / "quality"
    out_dir.mkdir(parents=True, exist_ok=True)
    result_file = out_dir / f"{_safe(run_id)}.json"
    result_file.write_text(json.dumps(outcome.describe_dict(), indent=2, default=str,
                                      ensure_ascii=False), encoding="utf-8")
    return QualityReport(run_id, result_file, results)


def _check_result(settings: Settings, suite_name: str, item: Any) -> CheckResult:
    config = item.expectation_config
    meta = config.meta or {}
    check = meta.get("check", config.type)
    severity = settings.quality.severities.get(f"{suite_name}.{check}",
                                               meta.get("severity", "critical"))
    result = item.result or {}
    if error := _raised(item.exception_info):
        # A check that could not run is a failure, never a silent pass.
        return CheckResult(suite_name, check, severity, False, None, f"error: {error}", [])
    sample = result.get("partial_unexpected_list") or [
        row for row in (result.get("details") or {}).get("unexpected_rows", [])[:5]]
    observed = result.get("observed_value")
    return CheckResult(suite_name, check, severity, bool(item.success),
                       result.get("unexpected_count"),
                       None if observed is None else str(observed),
                       [str(s) for s in sample][:10])


def _raised(info: Any) -> str | None:
    """The exception message in a GX exception_info (flat, or keyed by metric)."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message")).splitlines()[0]
    for nested in info.values():
        if message := _raised(nested):
            return message
    return None


def store_results(settings: Settings, warehouse: Warehouse, report: QualityReport) -> None:
    checked_at = pd.Timestamp(datetime.now(UTC))
    frame = pd.DataFrame([{**asdict(r), "check_name": r.check, "run_id": report.run_id,
                           "checked_at": checked_at,
                           "failing_sample": json.dumps(r.failing_sample, ensure_ascii=False)}
                          for r in report.results])
    warehouse.replace_slice(settings.warehouse.schema("quality"), "check_results",
                            RESULT_COLUMNS, frame, "run_id = ?", [report.run_id])


def gate(report: QualityReport) -> None:
    for warning in report.warnings:
        log.warning("data-quality warning %s.%s: %s", warning.suite, warning.check,
                    warning.describe())
    for failure in report.critical_failures:
        log.error("data-quality CRITICAL %s.%s: %s", failure.suite, failure.check,
                  failure.describe())
    if report.critical_failures:
        raise QualityGateError(report.critical_failures, report.result_file)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
