"""Run dbt against the configured warehouse.

dbt runs as a process of its own, from the same virtualenv: its global state (flags,
adapters, logging) then cannot leak between runs inside a long-lived Airflow worker. That
is the `dbt` program, or a fresh copy of a dbt starter (servicepulse.dbt_starter) where
one is configured.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from servicepulse.errors import RetryableError
from servicepulse.files import write_whole
from servicepulse.paths import DBT_PROJECT_DIR
from servicepulse.processes import run_child
from servicepulse.settings import Settings


class TransformError(RetryableError):
    """dbt failed; its log is named. A lock held by another process passes; a broken
    model needs a person, and the retries end in the failure alert."""


log = logging.getLogger(__name__)

@dataclass(frozen=True)
class DbtResult:
    command: list[str]
    returncode: int
    output: str
    # What dbt did per node, from its run_results.json (servicepulse.dbt_results).
    summary: dict | None = None


def dbt_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    pg = settings.warehouse.postgres
    env.update({
        "SERVICEPULSE_DBT_TARGET": settings.warehouse.kind,
        # Relative to dbt's working directory, the warehouse file's folder (run_dbt):
        # dbt keeps its parse only while the profile stays the same, and an absolute
        # path would make every output folder's profile a different one.
        "SERVICEPULSE_DUCKDB_PATH": settings.duckdb_path.name,
        "SERVICEPULSE_DUCKDB_MEMORY_LIMIT": settings.warehouse.duckdb_memory_limit,
        "SERVICEPULSE_PG_HOST": pg.host,
        "SERVICEPULSE_PG_PORT": str(pg.port),
        "SERVICEPULSE_PG_USER": pg.user,
        "SERVICEPULSE_PG_DBNAME": pg.dbname,
        # libpq applies these to dbt's connections (settings: warehouse.postgres), after
        # any the environment already sets.
        "PGOPTIONS": " ".join(filter(None, [env.get("PGOPTIONS", ""), pg.libpq_options()])),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    })
    return env


def dbt_vars(settings: Settings) -> dict[str, object]:
    from servicepulse import business_calendar, coverage, targets

    # The span around the present: recent data lies in it. Only which instants take the
    # arithmetic path depends on the clock, never a result.
    return {**coverage.dbt_vars(settings),
            **business_calendar.dbt_vars(settings.calendar),
            **targets.dbt_vars(settings),
            "reporting_timezone": settings.reporting_timezone,
            "reporting_utc_offset_span": reporting_utc_offset_span(
                settings.reporting_timezone, datetime.now(UTC).replace(minute=0, second=0,
                                                                       microsecond=0)),
            "schema_prefix": settings.warehouse.schema_prefix}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How far a span is followed: beyond any history a warehouse holds or deadline it computes.
_SPAN_LIMITS = (_EPOCH, datetime(2100, 1, 1, tzinfo=UTC))


@lru_cache(maxsize=8)
def reporting_utc_offset_span(zone_name: str, around: datetime) -> dict[str, int] | None:
    """The instants around `around` in which the zone keeps one UTC offset, in
    microseconds since the epoch: {"zone", "from_us", "until_us" (exclusive), "offset_us"};
    None when that offset holds for less than a day.

    On DuckDB, dbt's to_reporting_tz adds the offset to the instants inside the span and
    converts the others through ICU, which cost 1.5 s per 10M values (the five
    conversions of the tickets' staging were 9 s of a 10M full build): the span only
    has to be right inside. Offsets are sampled a day apart, then a minute apart where
    one changed, so only a change reverted within a day could be missed; no zone's rules
    hold one. The span comes from Python's time-zone database: inside it, a zone whose
    rules Python knows newer than DuckDB's ICU follows the newer rules."""
    zone = ZoneInfo(zone_name)
    offset = around.astimezone(zone).utcoffset()

    def farthest_with_offset(direction: int) -> datetime:
        instant, limit = around, _SPAN_LIMITS[direction > 0]
        for step in (timedelta(days=direction), timedelta(minutes=direction)):
            while True:
                candidate = instant + step
                beyond = candidate > limit if direction > 0 else candidate < limit
                if beyond or candidate.astimezone(zone).utcoffset() != offset:
                    break
                instant = candidate
        return instant

    first, last = farthest_with_offset(-1), farthest_with_offset(1)
    if last - first < timedelta(days=1):
        return None

    def micros(instant: datetime) -> int:
        return (instant - _EPOCH) // timedelta(microseconds=1)

    # Every sample from first to last had the offset; between last and the next sample
    # it changed somewhere, so the span ends just after last.
    return {"zone": zone_name, "from_us": micros(first), "until_us": micros(last) + 1,
            "offset_us": offset // timedelta(microseconds=1)}


def install_dbt_packages() -> None:
    """dbt refuses to run a project whose packages.yml is not installed. The packages are
    vendored (dbt_project/vendor/), so `dbt deps` only links them into dbt_packages/:
    done once per checkout, by whichever process comes first (a lock keeps two from
    doing it at once)."""
    import fcntl

    import yaml

    packages = yaml.safe_load((DBT_PROJECT_DIR / "packages.yml").read_text(encoding="utf-8"))
    wanted = [Path(entry["local"]).name for entry in packages.get("packages") or []]
    installed = DBT_PROJECT_DIR / "dbt_packages"
    if all((installed / name).exists() for name in wanted):
        return
    with (DBT_PROJECT_DIR / ".dbt_deps.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all((installed / name).exists() for name in wanted):
            return
        completed = run_child([*_dbt_command("deps"), "--no-use-colors"],
                              env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
                              cwd=DBT_PROJECT_DIR)
        if completed.returncode != 0:
            raise TransformError("dbt deps failed: "
                                 + (completed.stdout + completed.stderr)[-2000:])


def _dbt_command(*arguments: str) -> list[str]:
    """dbt of this virtualenv, on the project, with its profiles."""
    dbt = Path(sys.executable).with_name("dbt")
    return [str(dbt), *arguments, "--project-dir", str(DBT_PROJECT_DIR),
            "--profiles-dir", str(DBT_PROJECT_DIR)]


def run_dbt(settings: Settings, *arguments: str, check: bool = True,
            variables: dict[str, object] | None = None) -> DbtResult:
    """dbt ``arguments`` on the configured warehouse; ``variables``: dbt_vars(settings)
    when the caller has them already."""
    install_dbt_packages()
    target_dir = _target_dir(settings)
    vars_given = json.dumps(dbt_vars(settings) if variables is None else variables)
    command = [*_dbt_command(*arguments), "--target-path", str(target_dir),
               "--log-path", str(settings.output_path / "dbt" / "logs"), "--no-use-colors",
               "--vars", vars_given]
    from servicepulse.warehouse import dbt_turn

    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    environment = dbt_environment(settings)
    parse_cache = _ParseCache(settings, environment, vars_given)
    parse_cache.seed(target_dir)
    with dbt_turn(settings):
        completed = _run_dbt_process(settings, command, environment)
    parse_cache.keep(target_dir)
    output = completed.stdout + completed.stderr
    result = DbtResult(command, completed.returncode, output)
    if check and completed.returncode != 0:
        # Each error line and the explanation dbt indents under it.
        failures, in_error = [], False
        for line in output.splitlines():
            if "ERROR" in line or "FAIL" in line or "Error" in line:
                failures.append(line)
                in_error = True
            elif in_error and line.startswith("  ") and line.strip():
                failures.append(line)
            else:
                in_error = False
        raise TransformError(f"dbt {' '.join(arguments)} failed (exit {completed.returncode}):\n"
                             + "\n".join(failures[-30:] or output.splitlines()[-30:]))
    return result


def _run_dbt_process(settings: Settings, command: list[str],
                     environment: dict[str, str]) -> subprocess.CompletedProcess:
    """dbt as a program, or forked from the configured dbt starter (warehouse.dbt_starter)
    when one answers."""
    cwd = settings.duckdb_path.parent
    starter = settings.dbt_starter_path
    if starter is not None:
        from servicepulse.dbt_starter import StarterUnavailable, run_forked

        try:
            return run_forked(starter, command, environment, cwd)
        except StarterUnavailable as exc:
            log.warning("the dbt starter at %s does not answer (%s): dbt runs as a program",
                        starter, exc)
    return run_child(command, env=environment, cwd=cwd)


class _ParseCache:
    """dbt's parse of the project kept for output folders that have none yet
    (settings: warehouse.dbt_parse_cache). One file per set of vars and profile, the
    inputs besides the project's files that dbt checks a kept parse against; it checks
    the files itself and parses again what changed, so a stale file costs a parse, never
    a wrong build. The newest files are kept (PARSES_KEPT)."""

    FILE = "partial_parse.msgpack"
    PARSES_KEPT = 16

    def __init__(self, settings: Settings, environment: dict[str, str], vars_given: str):
        import hashlib

        self.folder = settings.dbt_parse_cache_path
        profile = {name: value for name, value in environment.items()
                   if name.startswith("SERVICEPULSE_") and name != "SERVICEPULSE_PG_PASSWORD"}
        # The project's folder too: a parse names the files it read by their path, and a
        # seed is loaded from there (another checkout's parse would read its files).
        key = json.dumps([str(DBT_PROJECT_DIR), vars_given, profile], sort_keys=True)
        self.name = hashlib.sha256(key.encode()).hexdigest()[:24] + ".msgpack"

    def seed(self, target_dir: Path) -> None:
        own = target_dir / self.FILE
        kept = self.folder / self.name if self.folder else None
        if kept is None or own.exists() or not kept.exists():
            return
        target_dir.mkdir(parents=True, exist_ok=True)
        write_whole(own, kept.read_bytes())

    def keep(self, target_dir: Path) -> None:
        """Keep this folder's parse unless the same is kept already (several processes
        may keep at once: write_whole)."""
        own = target_dir / self.FILE
        if self.folder is None or not own.exists():
            return
        kept = self.folder / self.name
        parse = own.read_bytes()
        if kept.exists() and kept.stat().st_size == len(parse) and kept.read_bytes() == parse:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        write_whole(kept, parse)
        ages = {}
        for path in self.folder.glob("*.msgpack"):
            try:
                ages[path] = path.stat().st_mtime
            except FileNotFoundError:  # another process pruned it meanwhile
                continue
        for stale in sorted(ages, key=ages.get)[:-self.PARSES_KEPT]:
            stale.unlink(missing_ok=True)


def build(settings: Settings, full_refresh: bool = False) -> DbtResult:
    """Seeds, models and their data tests in dependency order (dbt build), once the
    business calendar's seed holds the configured country. Facts are incremental;
    ``full_refresh`` rebuilds them from all raw rows (needed after changing the
    calendar, a deadline var or a fact's columns)."""
    from servicepulse import build_inputs, business_calendar
    from servicepulse.warehouse import connected

    business_calendar.check_seeded(settings.calendar)
    from servicepulse.actions.store import ensure_tables

    every_var = dbt_vars(settings)
    # The span only decides which instants take DuckDB's arithmetic path, never a
    # value (reporting_utc_offset_span): it is no input of the marts.
    variables = {name: value for name, value in every_var.items()
                 if name != "reporting_utc_offset_span"}
    manifest = _target_dir(settings) / "manifest.json"
    with connected(settings) as warehouse:
        # The corrective-actions tables dbt's actions source reads (created empty by
        # the first build, so that the marts' views over them read the tables from the
        # start).
        ensure_tables(settings, warehouse)
        digest = build_inputs.inputs_digest(settings, warehouse, variables, manifest)
        last = build_inputs.last_built_from(settings, warehouse)
        if not full_refresh and digest is not None and last is not None and last[0] == digest:
            message = (f"nothing to build: the project, settings and source rows are those "
                       f"the marts were built from at {last[1]:%Y-%m-%d %H:%M:%S} UTC")
            log.info("dbt build skipped, %s", message)
            return DbtResult([], 0, message, {"skipped": message, "nodes": 0})
        build_inputs.forget(settings, warehouse)
    # Unit tests check the models' logic on given rows, not the night's data: they run
    # in CI (a plain `dbt build`, and on PostgreSQL in tests/test_known_answers.py),
    # not in every nightly build, where they cost a third of a build with nothing new.
    result = run_dbt(settings, "build", "--exclude", "resource_type:unit_test",
                     *(["--full-refresh"] if full_refresh else []), variables=every_var)
    with connected(settings) as warehouse:
        # The inputs as they were when this build started (a load since then is new to
        # the next build); after a first build, its own manifest says which sources count.
        digest = digest or build_inputs.inputs_digest(settings, warehouse, variables, manifest)
        if digest is not None:
            build_inputs.remember(settings, warehouse, digest)
    return with_node_results(settings, result)


def _target_dir(settings: Settings) -> Path:
    """dbt's compiled artefacts, per warehouse: a DuckDB and a PostgreSQL build of the
    same checkout do not overwrite each other's manifest."""
    return settings.output_path / "dbt" / f"{settings.warehouse.kind}-target"


def with_node_results(settings: Settings, result: DbtResult) -> DbtResult:
    """The build's per-model status and timing, in the log (an Airflow task's log) and
    on the result, read from dbt's run_results.json rather than its console prose."""
    from servicepulse.dbt_results import log_table, read_run_results, summarise

    results = _target_dir(settings) / "run_results.json"
    if not results.exists():
        return result
    nodes = read_run_results(results)
    log.info("dbt build, node by node:\n%s", log_table(nodes))
    return DbtResult(result.command, result.returncode, result.output, summarise(nodes))
