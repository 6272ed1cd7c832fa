"""`make bench`: how long ingestion, the data-quality gate, the dbt build and the
reports take, and how much memory, by size.

Ingestion: the generated crm_tickets (about 103k and 1.03M rows, and the larger set
three times over, 3.1M) loaded into an empty DuckDB warehouse from the CSV file and
from a PostgreSQL CRM table (the local server, schema servicepulse_bench_crm, filled
with the tickets' latest versions), each load in a child process: rows per second and
the process's peak memory.

Quality gate: generates a data set per size (cached in output/bench/), loads it and
builds the marts, then runs every suite (raw before dbt, marts after, as the DAG does)
in a child process and reports its wall time and peak resident memory. Two sizes show
whether memory stays flat as rows grow (the checks run in the warehouse).

Marts: on about 1M generated tickets and on 10M (the same raw rows ten times with
distinct ids, because generating 10M rows in pandas would take half an hour: once as
a ten times longer history, each copy 17 weeks before the next, once as a ten times
busier organisation on the same days), a full `dbt build`, the hand-written DuckDB
queries of the weekly KPI table as yardsticks (bench_sql/: by every dimension, as
kpi_weekly holds it, and by department only, the narrower query of earlier figures),
and a nightly incremental build after the same 10,000 tickets are delivered again in
every size (three rounds, the sizes taking turns in each: the median is reported).
Each runs in a child process so its peak memory is its own. After each nightly build, a
build with nothing new (servicepulse.build_inputs skips dbt), against dbt's own start-up:
`dbt build` of an empty project. Then the 1M set on the local PostgreSQL server (database
servicepulse_bench_marts, made afresh): the real loader, a full build, the hand-written
yardstick in PostgreSQL's SQL, every row of the three KPI tables against DuckDB's, and
the same nightly builds. `--marts-sizes 1M` leaves out the 10M DuckDB sets;
`--postgres-sizes 1M 10M` adds the 10M history set on PostgreSQL (database
servicepulse_bench_marts_10m: the 10M DuckDB set's raw rows copied into tables made as
the 1M load made them; the full build, the yardstick and the nightly builds).

Reports: the weekly report of the data's last complete ISO week and the monthly report
of its last complete month, whole organisation and one department, zh-CN and en, each
rendered in a fresh child process (a report task's real situation: imports, fonts,
marts read, PDF written): the render's own time and the process's peak memory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

import yaml

from servicepulse.constants import SOURCES
from servicepulse.demo.bench_data import DAYS, START, bench_config, last_day_interval, prepare
from servicepulse.paths import PROJECT_ROOT


def _own_peak_mib() -> float:
    """This process's peak resident memory. VmHWM belongs to the process image, whereas
    Linux carries ru_maxrss over from the parent across fork and exec: a child of a
    parent that once held 450 MiB reported 450 MiB however little it used itself."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(config: str, layers: str = "raw,marts") -> dict[str, float]:
    from servicepulse.quality.runner import run_checks
    from servicepulse.settings import load_settings
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    start, end = last_day_interval(settings)
    with connected(settings, read_only=True) as warehouse:
        rows = int(warehouse.fetch_frame("select count(*) as n from raw.crm_tickets")["n"][0])
    timings: dict[str, float] = {"raw_ticket_rows": rows}
    checks = 0
    for layer in layers.split(","):
        started = time.perf_counter()
        report = run_checks(settings, "bench", start, end, layer)
        timings[f"{layer}_checks_s"] = time.perf_counter() - started
        checks += len(report.results)
        timings[f"{layer}_failed"] = len(report.critical_failures) + len(report.warnings)
    timings["checks"] = checks
    # The child's own peak: imports, GX and the checks, nothing else.
    timings["peak_rss_mib"] = _own_peak_mib()
    return timings


# (label, copies of the generated ~1M tickets, layout): the aims are about history
# (10M rows of it); the dense row shows a ten times busier organisation.
MARTS_SIZES = [("1M", 1, "history"), ("10M", 10, "history"), ("10M dense", 10, "dense")]
# 17 weeks: copies of the 120 generated days follow each other, weekdays kept.
HISTORY_COPY_SHIFT_DAYS = 119
NIGHTLY_CHANGED_TICKETS = 10_000
# A nightly build takes 20-50 s, and on this shared 2-core machine one run of the same
# build varied by a third: the median of three is reported (every run is kept).
NIGHTLY_REPEATS = 3
# The yardsticks: the weekly KPI table by every dimension (what kpi_weekly holds, the
# aim's yardstick), and the narrower query of organisation and departments that the
# figures before 25 November were measured against.
BENCH_SQL = files("servicepulse.demo") / "bench_sql"
HAND_WRITTEN_QUERIES = {
    "every_dimension": BENCH_SQL / "weekly_kpis_every_dimension_by_hand.sql",
    "departments": BENCH_SQL / "weekly_kpis_by_hand.sql",
}


def _in_child(function: str, *arguments: str) -> dict[str, float]:
    code = ("import sys, json; from servicepulse.demo import benchmarks; "
            f"print(json.dumps(benchmarks.{function}(*sys.argv[1:])))")
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True,
                               text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{function} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - started
    return result


def _peak_mib() -> float:
    """Peak resident memory of this process and of its largest child (dbt), in MiB."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return max(_own_peak_mib(), children)


def _scaled_warehouse(source_config: Path, scale: int, root: Path,
                      layout: str = "history") -> Path:
    """A warehouse whose raw tables hold the source's rows ``scale`` times; copies get
    distinct ids, keeping every reference between tickets, complaints and surveys.

    ``layout="history"`` (the marts benchmark): copy k is moved k x 17 weeks back in
    time (every timestamp and partition date; weekdays kept), so the history is
    ``scale`` times longer at the same daily volume, as an organisation's history
    grows. ``layout="dense"``: the copies lie on the same days, ``scale`` times the
    daily volume (the quality gate's benchmark; the marts benchmark's "dense" row)."""
    import duckdb

    from servicepulse.settings import load_settings

    source = load_settings(source_config, environ={})
    workdir = root / (f"marts-{scale}x" if layout == "dense" else f"marts-{scale}x-{layout}")
    workdir.mkdir(parents=True, exist_ok=True)
    config = bench_config(workdir, source.sources_dir)
    target = load_settings(config, environ={})
    if target.duckdb_path.exists():
        return config
    con = duckdb.connect(str(target.duckdb_path))
    con.execute(f"attach '{source.duckdb_path}' as source (read_only)")
    con.execute("create schema raw")

    def copy_id(column: str) -> str:
        return (f"case when {column} is null or copy = 0 then {column} "
                f"else {column} || '-' || copy end")

    def moved_back(column: str, data_type: str) -> str:
        moved = f"({column} - to_days(cast(copy * {HISTORY_COPY_SHIFT_DAYS} as integer)))"
        return f"cast({moved} as date)" if data_type == "DATE" else moved

    replicated = {
        "crm_tickets": ["ticket_id"],
        "complaints": ["complaint_id", "ticket_id"],
        "survey_responses": ["response_id", "ticket_id", "complaint_id"],
    }
    if layout == "history":
        replicated["audits"] = ["audit_id"]
    for table, columns in replicated.items():
        replaced = [f"{copy_id(c)} as {c}" for c in columns]
        if layout == "history":
            replaced += [
                f"{moved_back(name, data_type)} as {name}"
                for name, data_type in con.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_catalog = 'source' and table_schema = 'raw' and table_name = ? "
                    "and data_type in ('DATE', 'TIMESTAMP WITH TIME ZONE') "
                    "and column_name <> '_loaded_at'", [table]).fetchall()]
        con.execute(f"create table raw.{table} as select * replace ({', '.join(replaced)}) "
                    f"from source.raw.{table}, range({scale}) as copies(copy)")
    for table in ("crm_customers", "audits", "quarantined_rows", "deliveries"):
        if table not in replicated:
            con.execute(f"create table raw.{table} as select * from source.raw.{table}")
    con.close()
    return config


def _child_full_build(config: str) -> dict[str, float]:
    from servicepulse.settings import load_settings
    from servicepulse.transform import build
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    with connected(settings, read_only=True) as warehouse:
        rows = int(warehouse.fetch_frame("select count(*) as n from raw.crm_tickets")["n"][0])
    started = time.perf_counter()
    build(settings, full_refresh=True)
    return {"raw_ticket_rows": rows, "full_build_s": time.perf_counter() - started,
            "peak_rss_mib": _peak_mib()}


def _timed_yardstick(execute, query: str) -> tuple[float, int]:
    """Seconds and rows of one hand-written query, every computed column counted.

    A bare `count(*)` around the query would let the engine drop the columns nobody reads
    (PostgreSQL then skips the percentiles and takes a third of the time), so the wrapper
    counts each of them: the time is that of the whole table.
    """
    started = time.perf_counter()
    rows = execute(f"select count(*), count(value), count(median_measure), "
                   f"count(p90_measure) from ({query}) as by_hand")[0]
    return time.perf_counter() - started, rows


def _child_hand_written_query(config: str, yardstick: str) -> dict[str, float]:
    import duckdb

    from servicepulse.settings import load_settings

    settings = load_settings(config, environ={})
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    con.execute("set enable_progress_bar = false")
    elapsed, rows = _timed_yardstick(lambda sql: con.execute(sql).fetchone(),
                                     HAND_WRITTEN_QUERIES[yardstick].read_text())
    con.close()
    return {f"hand_written_{yardstick}_s": elapsed, f"hand_written_{yardstick}_rows": rows,
            f"hand_written_{yardstick}_peak_rss_mib": _peak_mib()}


def _child_nightly_build(config: str) -> dict[str, float]:
    """The same number of changed tickets (with their complaints and surveys) in every
    size, as a nightly delivery would bring, then an incremental build."""
    from servicepulse.settings import load_settings
    from servicepulse.transform import build
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    raw = settings.warehouse.schema("raw")
    with connected(settings) as warehouse:
        warehouse.execute(
            f"create temp table changed as select ticket_id from {raw}.crm_tickets "
            f"where ticket_id not like '%-%' order by ticket_id limit {NIGHTLY_CHANGED_TICKETS}")
        for table in ("crm_tickets", "complaints", "survey_responses"):
            warehouse.execute(f"update {raw}.{table} set _loaded_at = now() "
                              "where ticket_id in (select ticket_id from changed)")
        warehouse.execute("drop table changed")
    started = time.perf_counter()
    build(settings)
    return {"nightly_build_s": time.perf_counter() - started,
            "nightly_peak_rss_mib": _peak_mib()}


def _child_unchanged_build(config: str) -> dict[str, float]:
    """A build right after another, nothing loaded between: a night that brought
    nothing new (servicepulse.build_inputs)."""
    from servicepulse.settings import load_settings
    from servicepulse.transform import build

    settings = load_settings(config, environ={})
    started = time.perf_counter()
    result = build(settings)
    return {"unchanged_build_s": time.perf_counter() - started,
            "unchanged_build_skipped_dbt": bool((result.summary or {}).get("skipped"))}


def _child_dbt_empty_project(workdir: str) -> dict[str, float]:
    """dbt's own start-up: `dbt build` of a project with no models, seeds or tests, on
    a DuckDB file, the floor under any build dbt runs."""
    project = Path(workdir) / "empty-dbt-project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "dbt_project.yml").write_text(
        "name: empty\nversion: '1.0'\nconfig-version: 2\nprofile: empty\n")
    (project / "profiles.yml").write_text(yaml.safe_dump({"empty": {
        "target": "duckdb", "outputs": {"duckdb": {
            "type": "duckdb", "path": str(project / "empty.duckdb"), "threads": 1}}}}))
    dbt = Path(sys.executable).with_name("dbt")
    environment = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    started = time.perf_counter()
    subprocess.run([str(dbt), "build", "--project-dir", str(project), "--profiles-dir",
                    str(project)], check=True, capture_output=True, env=environment)
    return {"dbt_empty_project_s": time.perf_counter() - started}


def bench_marts(source_config: Path, root: Path,
                sizes: list[str] | None = None) -> list[dict[str, float]]:
    results = []
    configs = {}
    for label, scale, layout in MARTS_SIZES:
        if sizes is not None and label not in sizes:
            continue
        configs[label] = config = _scaled_warehouse(source_config, scale, root, layout)
        row: dict[str, float | str] = {"size": label, "layout": layout, "warehouse": "duckdb"}
        row.update(_in_child("_child_full_build", str(config)))
        for yardstick in HAND_WRITTEN_QUERIES:
            row.update(_in_child("_child_hand_written_query", str(config), yardstick))
            row[f"build_vs_hand_written_{yardstick}"] = (row["full_build_s"]
                                                        / row[f"hand_written_{yardstick}_s"])
        results.append(row)
        print(f"marts, {label} ({layout}), {row['raw_ticket_rows']:>10,.0f} raw ticket rows: "
              f"full dbt build {row['full_build_s']:.1f} s (peak RSS "
              f"{row['peak_rss_mib']:.0f} MiB); hand-written weekly query by every dimension "
              f"{row['hand_written_every_dimension_s']:.1f} s "
              f"(build = {row['build_vs_hand_written_every_dimension']:.1f}x), by department "
              f"{row['hand_written_departments_s']:.1f} s "
              f"(build = {row['build_vs_hand_written_departments']:.1f}x)",
              flush=True)
    # The nightly builds take turns across the sizes, round by round: this machine's
    # speed drifts over minutes (the 1M nightly build took 27.6-31.3 s in one run and
    # 16 s the evening before), and the nightly aim compares the sizes with each other.
    nightly: dict[str, list[dict[str, float]]] = {label: [] for label in configs}
    for _ in range(NIGHTLY_REPEATS):
        for label, config in configs.items():
            nightly[label].append({**_in_child("_child_nightly_build", str(config)),
                                   **_in_child("_child_unchanged_build", str(config))})
    by_size = {row["size"]: row for row in results}
    startup = [_in_child("_child_dbt_empty_project", str(root))["dbt_empty_project_s"]
               for _ in range(NIGHTLY_REPEATS)]
    print(f"marts: dbt's own start-up (`dbt build` of an empty project) "
          f"{statistics.median(startup):.1f} s (median of "
          f"{', '.join(f'{run:.1f}' for run in startup)})", flush=True)
    for label, row in by_size.items():
        row["dbt_empty_project_s"] = statistics.median(startup)
        row["unchanged_build_runs_s"] = [run["unchanged_build_s"] for run in nightly[label]]
        row["unchanged_build_s"] = statistics.median(row["unchanged_build_runs_s"])
        row["unchanged_vs_dbt_start_up"] = row["unchanged_build_s"] / row["dbt_empty_project_s"]
        print(f"marts, {label} ({row['layout']}): build with nothing new "
              f"{row['unchanged_build_s']:.2f} s = {row['unchanged_vs_dbt_start_up']:.2f}x "
              f"dbt's start-up (dbt skipped: "
              f"{all(run['unchanged_build_skipped_dbt'] for run in nightly[label])})",
              flush=True)
        row["nightly_build_runs_s"] = [run["nightly_build_s"] for run in nightly[label]]
        row["nightly_build_s"] = statistics.median(row["nightly_build_runs_s"])
        row["nightly_peak_rss_mib"] = max(run["nightly_peak_rss_mib"] for run in nightly[label])
        print(f"marts, {label} ({row['layout']}): nightly incremental build after "
              f"{NIGHTLY_CHANGED_TICKETS:,} changed tickets {row['nightly_build_s']:.1f} s "
              f"(median of {', '.join(f'{run:.1f}' for run in row['nightly_build_runs_s'])}, "
              f"the sizes taking turns; peak RSS {row['nightly_peak_rss_mib']:.0f} MiB)",
              flush=True)
    if "1M" in by_size and "10M" in by_size:
        ratio = by_size["10M"]["nightly_build_s"] / by_size["1M"]["nightly_build_s"]
        rounds = [large / small for large, small in zip(by_size["10M"]["nightly_build_runs_s"],
                                                        by_size["1M"]["nightly_build_runs_s"])]
        by_size["10M"]["nightly_vs_1M_by_round"] = rounds
        print(f"marts, nightly incremental build on 10M rows of history / on 1M (medians): "
              f"{ratio:.2f}x (round by round: {', '.join(f'{r:.2f}x' for r in rounds)})")
    return results


# The PostgreSQL warehouse of the marts benchmark: a database of its own on the local
# server, made afresh by every run (the 1M generated set loaded by the real loader).
BENCH_PG_DATABASE = "servicepulse_bench_marts"
PG_YARDSTICK = BENCH_SQL / "weekly_kpis_every_dimension_by_hand.postgres.sql"
KPI_TABLES = ("kpi_daily", "kpi_weekly", "kpi_monthly")


def _postgres_config(source_config: Path, root: Path) -> Path:
    import psycopg2

    from servicepulse.settings import load_settings

    source = load_settings(source_config, environ={})
    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres",
                                  dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"drop database if exists {BENCH_PG_DATABASE}")
        cursor.execute(f"create database {BENCH_PG_DATABASE}")
    connection.close()
    workdir = root / "marts-1x-postgres"
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    return bench_config(workdir, source.sources_dir, warehouse={
        "kind": "postgres", "postgres": {"dbname": BENCH_PG_DATABASE}})


def _child_load(config: str) -> dict[str, float]:
    from servicepulse import pipeline
    from servicepulse.settings import load_settings

    settings = load_settings(config, environ={})
    start, end = last_day_interval(settings)
    started = time.perf_counter()
    for source in SOURCES:
        pipeline.load(source, start, end, settings=settings)
    return {"load_s": time.perf_counter() - started}


def _child_postgres_hand_written_query(config: str) -> dict[str, float]:
    import psycopg2

    from servicepulse.settings import load_settings

    settings = load_settings(config, environ={})
    connection = psycopg2.connect(settings.warehouse.postgres.dsn())

    def execute(sql: str) -> tuple:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()

    elapsed, rows = _timed_yardstick(execute, PG_YARDSTICK.read_text())
    connection.close()
    return {"hand_written_every_dimension_s": elapsed,
            "hand_written_every_dimension_rows": rows}


def _kpi_rows(config: Path, table: str) -> list[tuple]:
    """A KPI mart's rows in one engine-neutral form (numbers to 9 decimals)."""
    from servicepulse.settings import load_settings
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    with connected(settings, read_only=True) as warehouse:
        frame = warehouse.fetch_frame(
            "select period_start, dimension, dimension_value, kpi_id, numerator, denominator, "
            f"value, target, status, previous_value from {settings.warehouse.schema('marts')}"
            f".{table} order by period_start, dimension, dimension_value, kpi_id")

    def comparable(value):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if hasattr(value, "year"):
            return str(value)[:10]
        if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
            return round(float(value), 9)
        return value

    return [tuple(comparable(value) for value in record)
            for record in frame.itertuples(index=False)]


# The 10M history set on PostgreSQL: a database of its own, made afresh by every run that
# asks for it (--postgres-sizes 10M), its raw tables copied from the 10M DuckDB set.
BENCH_PG_DATABASE_10M = "servicepulse_bench_marts_10m"


def _postgres_copy_of(duckdb_config: Path, postgres_1m_config: Path, root: Path) -> Path:
    """A PostgreSQL warehouse holding the raw rows of the DuckDB warehouse of
    ``duckdb_config`` (the scaled 10M set, which no loader delivered): every raw table
    made as the real loader made it in the 1M PostgreSQL warehouse (same columns, same
    types, same indexes), filled by COPY from a CSV export of DuckDB's table, then
    analysed."""
    import shutil
    import tempfile

    import duckdb
    import psycopg2

    from servicepulse.settings import load_settings

    source = load_settings(duckdb_config, environ={})
    model = load_settings(postgres_1m_config, environ={})
    server = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    server.autocommit = True
    with server.cursor() as cursor:
        cursor.execute(f"drop database if exists {BENCH_PG_DATABASE_10M}")
        cursor.execute(f"create database {BENCH_PG_DATABASE_10M}")
    server.close()
    workdir = root / "marts-10x-history-postgres"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    config = bench_config(workdir, source.sources_dir, warehouse={
        "kind": "postgres", "postgres": {"dbname": BENCH_PG_DATABASE_10M}})
    target = load_settings(config, environ={})
    raw_model, raw = model.warehouse.schema("raw"), target.warehouse.schema("raw")
    with psycopg2.connect(model.warehouse.postgres.dsn()) as made, made.cursor() as cursor:
        cursor.execute("select table_name from information_schema.tables "
                       "where table_schema = %s and table_type = 'BASE TABLE' "
                       "order by table_name", (raw_model,))
        tables = {}
        for (table,) in cursor.fetchall():
            cursor.execute(
                "select attname, format_type(atttypid, atttypmod) from pg_attribute "
                "where attrelid = %s::regclass and attnum > 0 and not attisdropped "
                "order by attnum", (f'"{raw_model}"."{table}"',))
            tables[table] = cursor.fetchall()
        # The loader's indexes too (load times, keys, partitions): without them every
        # nightly read of the rows loaded since the last build scanned the raw history.
        cursor.execute("select tablename, indexdef from pg_indexes where schemaname = %s",
                       (raw_model,))
        indexes = cursor.fetchall()
    warehouse = duckdb.connect(str(source.duckdb_path), read_only=True)
    copied: dict[str, int] = {}
    with psycopg2.connect(target.warehouse.postgres.dsn()) as connection, \
            connection.cursor() as cursor, tempfile.TemporaryDirectory(dir=root) as scratch:
        cursor.execute(f'create schema "{raw}"')
        for table, columns in tables.items():
            cursor.execute(f'create table "{raw}"."{table}" ('
                           + ", ".join(f'"{name}" {kind}' for name, kind in columns) + ")")
            exists = warehouse.execute(
                "select count(*) from information_schema.tables where table_schema = 'raw' "
                "and table_name = ?", [table]).fetchone()[0]
            if not exists:
                continue
            names = ", ".join(f'"{name}"' for name, _ in columns)
            export = Path(scratch) / f"{table}.csv"
            warehouse.execute(f"copy (select {names} from raw.{table}) to '{export}' "
                              "(header, delimiter ',')")
            with export.open(encoding="utf-8") as rows:
                cursor.copy_expert(f'copy "{raw}"."{table}" ({names}) from stdin '
                                   "with (format csv, header true)", rows)
            export.unlink()
            cursor.execute(f'select count(*) from "{raw}"."{table}"')
            copied[table] = cursor.fetchone()[0]
        for _, definition in indexes:
            before, _, after = definition.partition(" ON ")
            cursor.execute(f'{before} ON "{raw}".{after.split(".", 1)[1]}')
        connection.commit()
        connection.autocommit = True
        cursor.execute("analyze")
    warehouse.close()
    print(f"marts, 10M on PostgreSQL: raw rows copied from the 10M DuckDB set: {copied}",
          flush=True)
    return config


def bench_marts_postgres(duckdb_config: Path, root: Path, size: str = "1M",
                         duckdb_1m_config: Path | None = None,
                         postgres_1m_config: Path | None = None) -> dict:
    """A set on the local PostgreSQL server, each step in a child process: the full
    build, the hand-written yardstick and the nightly builds (10,000 changed tickets;
    nothing new). The 1M set is loaded by the real loader and its KPI rows compared with
    DuckDB's, every row; the 10M set (``duckdb_config`` then names the 10M DuckDB set)
    is copied from DuckDB's raw tables into tables made as the 1M load made them."""
    if size == "1M":
        config = _postgres_config(duckdb_config, root)
    else:
        assert postgres_1m_config is not None, "the 10M set is made after the 1M set"
        config = _postgres_copy_of(duckdb_config, postgres_1m_config, root)
    row: dict = {"size": size, "warehouse": "postgres", "config": str(config)}
    if size == "1M":
        row.update(_in_child("_child_load", str(config)))
    row.update(_in_child("_child_full_build", str(config)))
    if PG_YARDSTICK.is_file():
        row.update(_in_child("_child_postgres_hand_written_query", str(config)))
        row["build_vs_hand_written_every_dimension"] = (
            row["full_build_s"] / row["hand_written_every_dimension_s"])
    row["kpi_rows_differing_from_duckdb"], row["kpi_rows"] = {}, {}
    for table in KPI_TABLES if size == "1M" else ():  # the aim: equal at 1M
        on_postgres, on_duckdb = _kpi_rows(config, table), _kpi_rows(duckdb_config, table)
        row["kpi_rows"][table] = len(on_postgres)
        # Rows in one and not in the other, either way (0: every row identical).
        row["kpi_rows_differing_from_duckdb"][table] = len(set(on_postgres) ^ set(on_duckdb))
    runs = [{**_in_child("_child_nightly_build", str(config)),
             **_in_child("_child_unchanged_build", str(config))}
            for _ in range(NIGHTLY_REPEATS)]
    row["nightly_build_runs_s"] = [run["nightly_build_s"] for run in runs]
    row["nightly_build_s"] = statistics.median(row["nightly_build_runs_s"])
    row["unchanged_build_runs_s"] = [run["unchanged_build_s"] for run in runs]
    row["unchanged_build_s"] = statistics.median(row["unchanged_build_runs_s"])
    print(f"marts, {size} on PostgreSQL: "
          + (f"load {row['load_s']:.1f} s; " if "load_s" in row else "") + "full dbt build "
          f"{row['full_build_s']:.1f} s (peak RSS {row['peak_rss_mib']:.0f} MiB); "
          + (f"hand-written weekly query by every dimension "
             f"{row['hand_written_every_dimension_s']:.1f} s (build = "
             f"{row['build_vs_hand_written_every_dimension']:.1f}x); "
             if PG_YARDSTICK.is_file() else "")
          + f"KPI rows differing from DuckDB's: {row['kpi_rows_differing_from_duckdb']} "
          f"of {row['kpi_rows']}; nightly after {NIGHTLY_CHANGED_TICKETS:,} changed tickets "
          f"{row['nightly_build_s']:.1f} s (median of "
          f"{', '.join(f'{run:.1f}' for run in row['nightly_build_runs_s'])}); nothing new "
          f"{row['unchanged_build_s']:.2f} s", flush=True)
    return row


BENCH_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
BENCH_CRM_SCHEMA = "servicepulse_bench_crm"


def _child_ingest(config: str) -> dict[str, float]:
    """One first load (backfill) of crm_tickets into an empty DuckDB warehouse, as the
    nightly's load task does it: extract, land, check, insert."""
    from servicepulse.load import load_source
    from servicepulse.settings import load_settings
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    start, end = last_day_interval(settings)
    started = time.perf_counter()
    with connected(settings) as warehouse:
        result = load_source(settings, warehouse, "crm_tickets", start, end)
    elapsed = time.perf_counter() - started
    return {"rows_loaded": result.rows_loaded, "rows_quarantined": result.rows_quarantined,
            "load_s": elapsed, "rows_per_s": result.rows_loaded / elapsed,
            "landed_mib": sum(f["size_bytes"] for f in result.files) / 2**20,
            "peak_rss_mib": _own_peak_mib()}


def _ingest_config(workdir: Path, sources: Path, connector: dict) -> Path:
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    return bench_config(workdir, sources, {"crm_tickets": connector})


INGEST_REPLICAS = 3


def _replicate_tickets(csv_file: Path, sources: Path, copies: int) -> None:
    import shutil

    import duckdb

    sources.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(
        f"copy (select * exclude (copy) replace (case when copy = 0 then ticket_id else ticket_id || '-' || "
        f"copy end as ticket_id) from read_csv('{csv_file}', all_varchar = true), "
        f"range({copies}) as copies(copy)) to '{sources / 'crm_tickets.csv'}' (header)")
    con.close()
    shutil.copyfile(csv_file.with_name("crm_customers.csv"), sources / "crm_customers.csv")


def bench_ingest(sizes: list[int], root: Path) -> list[dict]:
    """crm_tickets from its CSV file and from a PostgreSQL CRM table into DuckDB."""
    from servicepulse.demo.generate import GenerationSpec, generate
    from servicepulse.demo.systems import fill_crm

    results = []
    runs = [(size, root / f"tickets-per-day-{size}" / "sources") for size in sizes]
    # A third, larger size shows whether memory stays flat: the largest data set's
    # tickets three times over, with distinct ids.
    largest = runs[-1]
    runs.append((largest[0] * INGEST_REPLICAS, root / f"tickets-x{INGEST_REPLICAS}" / "sources"))
    for size, sources in runs:
        if not (sources / "crm_tickets.csv").exists():
            if size in sizes:
                generate(GenerationSpec(out=sources, start=START, days=DAYS, seed=1,
                                        tickets_per_day=size))
            else:
                _replicate_tickets(largest[1] / "crm_tickets.csv", sources, INGEST_REPLICAS)
        crm_rows = fill_crm(BENCH_PG_URL, sources, schema=BENCH_CRM_SCHEMA)["tickets"]
        for origin, connector in (
                ("CSV file", {"kind": "file", "location": "crm_tickets.csv"}),
                ("PostgreSQL", {"kind": "sql", "url": BENCH_PG_URL, "table": "tickets",
                                "db_schema": BENCH_CRM_SCHEMA})):
            workdir = root / "ingest" / f"{size}-{origin.split()[0].lower()}"
            config = _ingest_config(workdir, sources, connector)
            row = {"tickets_per_day": size, "from": origin, **_in_child("_child_ingest",
                                                                         str(config))}
            if origin == "PostgreSQL":
                row["crm_table_rows"] = crm_rows
            results.append(row)
            print(f"ingest crm_tickets from {origin:<10}: {row['rows_loaded']:>9,.0f} rows in "
                  f"{row['load_s']:.2f} s = {row['rows_per_s']:,.0f} rows/s (landed "
                  f"{row['landed_mib']:.0f} MiB), peak RSS {row['peak_rss_mib']:.0f} MiB",
                  flush=True)
    return results


REPORT_PERIODS = ("2026-W47", "2026-10")  # the last complete week and month of the data


def _child_render(config: str, period_label: str, locale: str, department: str) -> dict:
    """One report as a report task renders it, in a fresh process: the first render
    pays for WeasyPrint's import and font set-up (cold); the second, as publishing's
    next audience would, does not (warm)."""
    from servicepulse.kpis import Period
    from servicepulse.publishing import render_report
    from servicepulse.settings import load_settings
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    timings = {}
    for attempt in ("render_s", "warm_render_s"):
        started = time.perf_counter()
        with connected(settings, read_only=True) as warehouse:
            path, _ = render_report(settings, warehouse, Period.parse(period_label), locale,
                                    department or None, settings.output_path / "bench-reports")
        timings[attempt] = time.perf_counter() - started
    from pypdf import PdfReader

    return {**timings, "pages": len(PdfReader(path).pages),
            "pdf_kib": path.stat().st_size / 1024, "peak_rss_mib": _own_peak_mib()}


def bench_reports(config: Path) -> list[dict]:
    from servicepulse.settings import load_settings
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    with connected(settings, read_only=True) as warehouse:
        department = warehouse.fetch_frame(
            "select min(department) as d from marts.dim_departments")["d"][0]
    results = []
    for period in REPORT_PERIODS:
        for scope in ("", department):
            for locale in ("zh-CN", "en"):
                row = {"period": period, "scope": scope or "all", "locale": locale,
                       **_in_child("_child_render", str(config), period, locale, scope)}
                results.append(row)
                print(f"report {period:<8} {row['scope']:<15} {locale:<5}: render "
                      f"{row['render_s']:.2f} s cold, {row['warm_render_s']:.2f} s warm "
                      f"(process {row['process_wall_s']:.2f} s), {row['pages']:.0f} pages, "
                      f"peak RSS {row['peak_rss_mib']:.0f} MiB", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets-per-day", type=int, nargs="+", default=[1000, 9800],
                        help="sizes to run (120 days each; 9800/day is about 1M tickets)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "output" / "bench")
    parser.add_argument("--only", choices=["ingest", "quality", "marts", "reports", "publish"],
                        help="run one part (default: all)")
    parser.add_argument("--marts-sizes", nargs="+", choices=[size for size, _, _ in MARTS_SIZES],
                        default=[size for size, _, _ in MARTS_SIZES],
                        help="the DuckDB sizes of the marts benchmark")
    parser.add_argument("--postgres-sizes", nargs="+", choices=["1M", "10M"], default=["1M"],
                        help="the PostgreSQL sizes of the marts benchmark (10M: copied from "
                             "the 10M DuckDB set, about an hour more)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "ingest"):
        ingest = bench_ingest(args.tickets_per_day, args.out)
        (args.out / "ingest.json").write_text(json.dumps(ingest, indent=2))
        print(f"results: {args.out / 'ingest.json'}")
        if args.only == "ingest":
            return 0
    if args.only in (None, "reports"):
        reports = []
        for size in args.tickets_per_day:
            config, _ = prepare(size, args.out)
            reports += [{"tickets_per_day": size, **row} for row in bench_reports(config)]
        (args.out / "reports.json").write_text(json.dumps(reports, indent=2))
        print(f"results: {args.out / 'reports.json'}")
        if args.only == "reports":
            return 0
    if args.only in (None, "publish"):
        from servicepulse.demo.bench_publish import bench_publish

        config, _ = prepare(min(args.tickets_per_day), args.out)
        bench_publish(config, args.out)
        if args.only == "publish":
            return 0
    if args.only != "quality":
        # The marts benchmark starts from the largest generated data set.
        config, _ = prepare(max(args.tickets_per_day), args.out)
        marts = bench_marts(config, args.out, args.marts_sizes)
        on_postgres = {"1M": bench_marts_postgres(config, args.out)}
        if "10M" in args.postgres_sizes:
            on_postgres["10M"] = bench_marts_postgres(
                _scaled_warehouse(config, 10, args.out, "history"), args.out, "10M",
                postgres_1m_config=Path(on_postgres["1M"]["config"]))
            ratio = on_postgres["10M"]["nightly_build_s"] / on_postgres["1M"]["nightly_build_s"]
            on_postgres["10M"]["nightly_vs_1M"] = ratio
            print(f"marts, PostgreSQL: nightly incremental build on 10M rows of history / on "
                  f"1M (medians): {ratio:.2f}x", flush=True)
        for size, row in on_postgres.items():
            marts.append(row)
            same_data = [duckdb_row for duckdb_row in marts
                         if duckdb_row.get("warehouse") == "duckdb"
                         and duckdb_row["size"] == size and duckdb_row.get("layout") == "history"]
            if same_data:  # the aim is a ratio within one run
                row["build_vs_duckdb"] = row["full_build_s"] / same_data[0]["full_build_s"]
                print(f"marts, {size}: PostgreSQL's full build = {row['build_vs_duckdb']:.2f}x "
                      "DuckDB's", flush=True)
        (args.out / "marts.json").write_text(json.dumps(marts, indent=2))
        print(f"results: {args.out / 'marts.json'}")
        if args.only == "marts":
            return 0
    results = []
    for size in args.tickets_per_day:
        config, preparation = prepare(size, args.out)
        measured = _in_child("_child", str(config))
        results.append({"tickets_per_day": size, **preparation, **measured})
        row = results[-1]
        print(f"quality gate, {row['raw_ticket_rows']:>9,} raw ticket rows: "
              f"{row['checks']:.0f} checks, raw {row['raw_checks_s']:.1f} s + marts "
              f"{row['marts_checks_s']:.1f} s (process {row['process_wall_s']:.1f} s), "
              f"peak RSS {row['peak_rss_mib']:.0f} MiB", flush=True)
    # The raw checks are the part that grows with rows (the marts are aggregates): run
    # them on the largest set three times over to see whether memory stays flat.
    config, _ = prepare(max(args.tickets_per_day), args.out)
    scaled = _scaled_warehouse(config, INGEST_REPLICAS, args.out, layout="dense")
    measured = _in_child("_child", str(scaled), "raw")
    results.append({"tickets_per_day": max(args.tickets_per_day) * INGEST_REPLICAS,
                    "layers": "raw", **measured})
    print(f"quality gate, {measured['raw_ticket_rows']:>9,} raw ticket rows (the largest set "
          f"x{INGEST_REPLICAS}, raw checks only): {measured['checks']:.0f} checks, raw "
          f"{measured['raw_checks_s']:.1f} s (process {measured['process_wall_s']:.1f} s), "
          f"peak RSS {measured['peak_rss_mib']:.0f} MiB", flush=True)
    (args.out / "quality-gate.json").write_text(json.dumps(results, indent=2))
    print(f"results: {args.out / 'quality-gate.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
