"""Run every suite in ``expectations/`` as one Great Expectations checkpoint.

The checks run as SQL inside the warehouse (DuckDB through the buffered dialect,
PostgreSQL through psycopg2). Each check's outcome is written three ways so that
no failure disappears: the GX validation result as JSON in ``output/quality/``, a
row per check in the warehouse table ``quality.check_results``, and the log. A
failed critical check raises QualityGateError naming every failed check.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import logging
import pkgutil
import sys
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pandas as pd

from servicepulse.errors import PermanentError
from servicepulse.paths import EXPECTATIONS_DIR
from servicepulse.settings import Settings
from servicepulse.warehouse import Warehouse

log = logging.getLogger(__name__)
SAMPLE_SIZE = 10
DOCS_SITE = "servicepulse"
RESULT_COLUMNS = [
    ("run_id", "VARCHAR"), ("checked_at", "TIMESTAMPTZ"), ("interval_start", "VARCHAR"),
    ("interval_end", "VARCHAR"), ("layer", "VARCHAR"), ("suite", "VARCHAR"),
    ("check_name", "VARCHAR"), ("severity", "VARCHAR"), ("success", "BOOLEAN"),
    ("unexpected_count", "BIGINT"), ("observed_value", "VARCHAR"), ("failing_sample", "VARCHAR"),
]


class QualityGateError(PermanentError):
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
    interval: tuple[str, str] = ("", "")
    layer: str = "all"

    @property
    def critical_failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "critical"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "warning"]

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "layer": self.layer, "interval": list(self.interval),
                "checks": len(self.results),
                "passed": sum(r.success for r in self.results),
                "critical_failures": [f"{r.suite}.{r.check}" for r in self.critical_failures],
                "warnings": [f"{r.suite}.{r.check}" for r in self.warnings],
                "result_file": str(self.result_file)}


LAYERS = {"raw": ("raw",), "marts": ("marts",)}


def _suites_package() -> None:
    """Import expectations/ as the package ``expectations`` from its folder (it is not
    installed: it sits beside src/), leaving sys.path alone."""
    if "expectations" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        "expectations", EXPECTATIONS_DIR / "__init__.py",
        submodule_search_locations=[str(EXPECTATIONS_DIR)])
    package = importlib.util.module_from_spec(spec)
    sys.modules["expectations"] = package
    spec.loader.exec_module(package)


def suite_modules(layer: str | None = None) -> list[Any]:
    """The suites in expectations/, optionally only those of one layer."""
    _suites_package()
    names = sorted(m.name for m in pkgutil.iter_modules([str(EXPECTATIONS_DIR)])
                   if not m.name.startswith("_"))
    modules = [importlib.import_module(f"expectations.{name}") for name in names]
    return [m for m in modules if layer is None or m.SCHEMA in LAYERS[layer]]


def connection_string(settings: Settings, schema: str) -> tuple[str, dict[str, Any]]:
    """A connection whose unqualified table names resolve in ``schema``."""
    if settings.warehouse.kind == "duckdb":
        from servicepulse.quality.duckdb_dialect import register

        register()
        # No rollback when a connection returns to the pool: checks only read, and
        # close_all() may already have closed connections GX still holds.
        # memory_limit bounds DuckDB's buffer cache, so memory does not grow with the
        # tables checked (DuckDB spills to disk beyond it).
        return ((f"duckdb+buffered:///{settings.duckdb_path}?search_path={schema}"
                f"&memory_limit={settings.quality.duckdb_memory_limit}"),
                {"pool_reset_on_return": None})
    pg = settings.warehouse.postgres
    password = f":{quote_plus(pg.password)}" if pg.password else ""
    url = (f"postgresql+psycopg2://{quote_plus(pg.user)}{password}@{pg.host}:{pg.port}/"
           f"{pg.dbname}")
    options = " ".join(filter(None, [f"-c search_path={schema}", pg.libpq_options()]))
    return url, {"connect_args": {"options": options}}


def scope_for(settings: Settings, interval_start: datetime, interval_end: datetime):
    _suites_package()
    from expectations._helpers import Scope

    local_start = interval_start.astimezone(settings.tz).date()
    local_end = interval_end.astimezone(settings.tz).date()
    days = tuple(local_start + timedelta(days=n) for n in range((local_end - local_start).days))
    return Scope(
        interval_start=interval_start.astimezone(UTC),
        interval_end=interval_end.astimezone(UTC),
        local_days=days or (local_start,),
        table=lambda schema, table: f'"{settings.warehouse.schema(schema)}"."{table}"',
        freshness_lag={source: timedelta(hours=hours) for source, hours
                       in settings.quality.freshness_lag_hours.items()},
        volume_band=settings.quality.volume_band,
        jump_band=settings.quality.jump_band,
        reporting_tz=settings.tz)


def run_checks(settings: Settings, run_id: str, interval_start: datetime,
               interval_end: datetime, layer: str | None = None) -> QualityReport:
    """Validate the suites (all, or one layer's) in the warehouse for the interval."""
    # GX prints (not warns) that a query without {batch} reads beyond the batch, each
    # time it builds such a check: freshness, volume and quarantine read whole tables
    # on purpose, and 250 such lines buried the task log.
    with contextlib.redirect_stdout(io.StringIO()):
        return _run_checks(settings, run_id, interval_start, interval_end, layer)


def _run_checks(settings: Settings, run_id: str, interval_start: datetime,
                interval_end: datetime, layer: str | None) -> QualityReport:
    # Before the import: importing GX registers each expectation class with an INFO
    # line (214 of a check task's 228 log lines), none of which an operator needs.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    # One GX module pins its own logger at INFO on import ("Created temporary directory").
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    scope = scope_for(settings, interval_start, interval_end)
    # A source the organisation does not have is not checked: its raw table is empty.
    modules = [m for m in suite_modules(layer)
               if not (m.SCHEMA == "raw" and _connector_kind(settings, m.TABLE) == "none")]
    # Before GX connects: DuckDB refuses a second connection with other settings.
    loaded = _loaded_rows_views(settings, [m.TABLE for m in modules if m.SCHEMA == "raw"],
                                scope.local_days[-1])
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    docs_dir = settings.output_path / "quality" / "data_docs"
    context.add_data_docs_site(site_name=DOCS_SITE, site_config={
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(docs_dir)}})
    # Table assets, one datasource per schema: GX reflects a table asset's columns with
    # a one-row query, but runs a query asset's whole query to learn its columns.
    # (A table asset's schema_name is deprecated in GX 1.x: the connection sets it.)
    datasources: dict[str, Any] = {}
    checkpoints, tables = [], {}
    for module in modules:
        # Raw suites check the rows this run loaded, through a view in the quality
        # schema (one day on a nightly run, everything on a first load): a version
        # superseded by a later correction is not checked again.
        schema = settings.warehouse.schema("quality" if module.SCHEMA == "raw"
                                           else module.SCHEMA)
        if schema not in datasources:
            url, engine_kwargs = connection_string(settings, schema)
            datasources[schema] = context.data_sources.add_sql(
                name=f"warehouse_{schema}", connection_string=url, kwargs=engine_kwargs)
        suite = module.build_suite(scope)
        if module.SCHEMA == "raw":
            suite = _without_absent_fields(suite, settings, module.TABLE)
        suite = context.suites.add(suite)
        table_name = loaded.get(module.TABLE, module.TABLE) if module.SCHEMA == "raw" \
            else module.TABLE
        tables[suite.name] = f'"{schema}"."{table_name}"'
        asset = datasources[schema].add_table_asset(name=suite.name, table_name=table_name)
        batch = asset.add_batch_definition_whole_table("whole_table")
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=suite))
        result_format: dict[str, Any] = {"result_format": "SUMMARY",
                                         "partial_unexpected_count": SAMPLE_SIZE}
        if getattr(module, "KEY", None):
            # Failing rows are reported by their key, so the data team can find them.
            result_format["unexpected_index_column_names"] = [module.KEY]
        checkpoints.append(context.checkpoints.add(gx.Checkpoint(
            name=f"servicepulse_{suite.name}", validation_definitions=[definition],
            result_format=result_format,
            actions=[UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])])))
    try:
        outcomes = [checkpoint.run() for checkpoint in checkpoints]
    finally:
        # Release the warehouse: DuckDB allows one writer, and the next step writes.
        for datasource in datasources.values():
            datasource.get_engine().dispose()
        if settings.warehouse.kind == "duckdb":
            from servicepulse.quality.duckdb_dialect import close_all

            close_all()

    results = []
    for outcome in outcomes:
        for validation in outcome.run_results.values():
            for item in validation.results:
                result = _check_result(settings, validation.suite_name, item)
                query = item.expectation_config.kwargs.get("unexpected_rows_query")
                if query and not result.success and not result.failing_sample:
                    result = replace(result, failing_sample=_sample_rows(
                        settings, tables[validation.suite_name], query,
                        (item.expectation_config.meta or {}).get("key")))
                results.append(result)
    out_dir = settings.output_path / "quality"
    out_dir.mkdir(parents=True, exist_ok=True)
    result_file = out_dir / f"{_safe(run_id)}{'-' + layer if layer else ''}.json"
    result_file.write_text(json.dumps(
        {"run_id": run_id, "interval": [interval_start.isoformat(), interval_end.isoformat()],
         "checkpoints": [outcome.describe_dict() for outcome in outcomes]},
        indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    return QualityReport(run_id, result_file, results,
                         (interval_start.isoformat(), interval_end.isoformat()), layer or "all")


def _connector_kind(settings: Settings, source: str) -> str | None:
    connector = settings.sources.connectors.get(source)
    return connector.kind if connector else None


def _without_absent_fields(suite: Any, settings: Settings, source: str) -> Any:
    """The suite less the checks of fields the source's mapping says it does not have
    (they are empty by configuration, not by defect)."""
    connector = settings.sources.connectors.get(source)
    absent = set(connector.mapping.absent) if connector else set()
    if not absent:
        return suite
    kept = [e for e in suite.expectations
            if not ({getattr(e, name, None) for name in ("column", "column_A", "column_B")}
                    & absent)]
    suite.expectations = kept
    return suite


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
    observed = result.get("observed_value")
    return CheckResult(suite_name, check, severity, bool(item.success),
                       result.get("unexpected_count"),
                       None if observed is None else str(observed),
                       _failing_sample(result, meta.get("key")))


def _failing_sample(result: dict[str, Any], key: str | None) -> list[str]:
    """Keys of failing rows where GX reports them, else the failing values or rows."""
    indexed = result.get("partial_unexpected_index_list") or []
    if key and indexed:
        return [str(row.get(key)) for row in indexed if isinstance(row, dict)][:SAMPLE_SIZE]
    rows = (result.get("details") or {}).get("unexpected_rows") or []
    if rows:
        return [str(row.get(key) if key and isinstance(row, dict) and key in row else row)
                for row in rows][:SAMPLE_SIZE]
    return [str(value) for value in result.get("partial_unexpected_list") or []][:SAMPLE_SIZE]


def _loaded_rows_views(settings: Settings, tables: list[str], last_day: date) -> dict[str, str]:
    """(Re)create quality.loaded_<table> for each raw table: the rows of the load batches
    that end after ``last_day`` (the loader names a batch <source>:<first day>:<end day>).
    Views, so GX reflects their columns cheaply and every check runs as SQL."""
    from servicepulse.warehouse import connected

    end = (last_day + timedelta(days=1)).isoformat()
    raw, quality = settings.warehouse.schema("raw"), settings.warehouse.schema("quality")
    views = {}
    with connected(settings) as warehouse:
        if tables:
            warehouse.execute(f'create schema if not exists "{quality}"')
        for table in tables:
            if not warehouse.table_exists(raw, table):
                raise QualityGateError([CheckResult(
                    f"raw_{table}", "table_exists", "critical", False, None,
                    f"no raw table {raw}.{table}: nothing was loaded", [])],
                    settings.output_path / "quality")
            frame = warehouse.fetch_frame(
                f'select distinct _batch_id from "{raw}"."{table}" where _batch_id like ?',
                [f"%:{end}"])
            ids = ", ".join("'" + b.replace("'", "''") + "'" for b in frame["_batch_id"])
            condition = f"_batch_id in ({ids})" if ids else "1 = 0"
            view = views[table] = f"loaded_{table}"
            warehouse.execute(f'drop view if exists "{quality}"."{view}"')
            warehouse.execute(f'create view "{quality}"."{view}" as '
                              f'select * from "{raw}"."{table}" where {condition}')
    return views


def _sample_rows(settings: Settings, relation: str, query: str, key: str | None) -> list[str]:
    """A few failing rows of a query check (GX returns them only with COMPLETE results,
    which would also make every column check return all its failing values)."""
    from servicepulse.warehouse import connected

    sql = query.format(batch=f"(select * from {relation}) as batch_rows")
    with connected(settings) as warehouse:
        frame = warehouse.fetch_frame(f"select * from ({sql}) as failing limit {SAMPLE_SIZE}")
    if key and key in frame.columns:
        return [str(value) for value in frame[key]]
    return [json.dumps(row, default=str, ensure_ascii=False)
            for row in frame.to_dict(orient="records")]


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
                           "checked_at": checked_at, "interval_start": report.interval[0],
                           "interval_end": report.interval[1], "layer": report.layer,
                           "failing_sample": json.dumps(r.failing_sample, ensure_ascii=False)}
                          for r in report.results])
    warehouse.replace_slice(settings.warehouse.schema("quality"), "check_results",
                            RESULT_COLUMNS, frame, "run_id = ? and layer = ?",
                            [report.run_id, report.layer])


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
