"""What the marts were built from, so that a night that brought nothing new costs
almost nothing.

A build's result depends on the dbt project (its files, dbt's version), on the
variables ServicePulse passes it (settings: time zone, deadlines, targets, which
sources are measured), and on the rows of the source tables the built tables read.
Their digest is kept in the warehouse after every successful build; a nightly build
whose digest equals the kept one skips dbt entirely: the marts, and the data tests
that passed on them, are what dbt would write again.

A source table's rows are summarised by their count and their newest ``_loaded_at``:
every load stamps the rows it writes (a correction is a new version with a new load
time) and a re-load that drops rows changes the count. Only the sources that feed a
table or incremental model count (dbt's manifest of the previous build says which): a
view over the corrective-actions tables reads them live, and an action edited during
the day needs no rebuild of any mart. A source without ``_loaded_at`` feeding a table
cannot be summarised so cheaply: then nothing is skipped.

The digest is forgotten before dbt starts and written only when it succeeded: a build
that failed half-way, a full refresh too, never leaves a digest that would let the
next night skip over its half-built tables.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from servicepulse.paths import DBT_PROJECT_DIR
from servicepulse.settings import Settings
from servicepulse.warehouse import Warehouse, create_table_once

log = logging.getLogger(__name__)

TABLE = "_build_inputs"
# What dbt reads of the project; its target, logs and installed packages' links are
# its own output (the vendored packages themselves are in vendor/).
PROJECT_OUTPUTS = {"target", "logs", "dbt_packages"}
DBT_DISTRIBUTIONS = ("dbt-core", "dbt-duckdb", "dbt-postgres")
BUILT_MATERIALIZATIONS = {"table", "incremental"}


def table_name(settings: Settings) -> str:
    return f'"{settings.warehouse.schema("marts")}"."{TABLE}"'


def project_digest(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """The dbt project's files and dbt's own version, as one digest."""
    digest = hashlib.sha256()
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if relative.parts[0] in PROJECT_OUTPUTS or not path.is_file():
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    for distribution in DBT_DISTRIBUTIONS:
        try:
            digest.update(f"{distribution}=={version(distribution)}\0".encode())
        except PackageNotFoundError:
            digest.update(f"{distribution} absent\0".encode())
    return digest.hexdigest()


def sources_feeding_tables(manifest_path: Path) -> list[tuple[str, str]] | None:
    """(schema, table) of every dbt source some table or incremental model reads,
    directly or through views; None without the previous build's manifest."""
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    nodes, children = manifest["nodes"], manifest["child_map"]
    feeding = []
    for unique_id, source in sorted(manifest["sources"].items()):
        seen, queue = set(), list(children.get(unique_id, []))
        while queue:
            child = queue.pop()
            if child in seen or child not in nodes:
                continue
            seen.add(child)
            node = nodes[child]
            if node["resource_type"] == "model" and \
                    node["config"].get("materialized") in BUILT_MATERIALIZATIONS:
                feeding.append((source["schema"], source.get("identifier") or source["name"]))
                break
            queue.extend(children.get(child, []))
    return feeding


def _source_rows(warehouse: Warehouse, tables: list[tuple[str, str]]) -> list | None:
    """Each table's row count and newest load, or None when one cannot say."""
    if not tables:
        return []
    # Every table's columns in one query (not one per table).
    wanted = " or ".join("(table_schema = ? and table_name = ?)" for _ in tables)
    found = warehouse.fetch_frame(
        f"select table_schema, table_name, column_name from information_schema.columns "
        f"where {wanted}", [name for pair in tables for name in pair])
    columns: dict[tuple[str, str], set[str]] = {}
    for row in found.itertuples(index=False):
        columns.setdefault((row.table_schema, row.table_name), set()).add(row.column_name)
    selects = []
    for schema, table in tables:
        if (schema, table) not in columns:
            selects.append(f"select '{schema}.{table}' as source_table, 0 as row_count, "
                           "null as newest_load")
        elif "_loaded_at" not in columns[schema, table]:
            log.info("%s.%s has no _loaded_at: a build cannot tell it is unchanged",
                     schema, table)
            return None
        else:
            selects.append(f"select '{schema}.{table}' as source_table, count(*) as row_count, "
                           f'cast(max(_loaded_at) as varchar) as newest_load from "{schema}"."{table}"')
    if not selects:
        return []
    frame = warehouse.fetch_frame(" union all ".join(selects))
    return [[str(row.source_table), int(row.row_count), row.newest_load and str(row.newest_load)]
            for row in frame.itertuples(index=False)]


def inputs_digest(settings: Settings, warehouse: Warehouse, dbt_vars: dict,
                  manifest_path: Path) -> str | None:
    """The digest of everything the next build would read, or None when it cannot be
    told (no previous manifest, a source without load times)."""
    tables = sources_feeding_tables(manifest_path)
    if tables is None:
        return None
    rows = _source_rows(warehouse, tables)
    if rows is None:
        return None
    described = {"project": project_digest(), "vars": dbt_vars, "sources": rows,
                 "warehouse": settings.warehouse.kind}
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()
                          ).hexdigest()


def _ensure(settings: Settings, warehouse: Warehouse) -> None:
    create_table_once(warehouse, settings.warehouse.schema("marts"), TABLE,
                      "digest VARCHAR NOT NULL, built_at TIMESTAMP NOT NULL")


def last_built_from(settings: Settings, warehouse: Warehouse) -> tuple[str, datetime] | None:
    """The digest the marts were last built from, and when (UTC)."""
    if not warehouse.table_exists(settings.warehouse.schema("marts"), TABLE):
        return None
    frame = warehouse.fetch_frame(f"select digest, built_at from {table_name(settings)}")
    if frame.empty:
        return None
    return str(frame["digest"].iloc[0]), frame["built_at"].iloc[0]


def forget(settings: Settings, warehouse: Warehouse) -> None:
    if warehouse.table_exists(settings.warehouse.schema("marts"), TABLE):
        warehouse.execute(f"delete from {table_name(settings)}")


def remember(settings: Settings, warehouse: Warehouse, digest: str) -> None:
    _ensure(settings, warehouse)
    with warehouse.transaction():
        warehouse.execute(f"delete from {table_name(settings)}")
        warehouse.execute(f"insert into {table_name(settings)} values (?, ?)",
                          [digest, datetime.now(UTC).replace(tzinfo=None)])
