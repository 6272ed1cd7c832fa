"""Pull one source for one data interval into its raw table, idempotently, losing nothing.

1. **Extract and land.** The source's connector (a file drop, a SQL database, an HTTP
   API; ``sources.connectors`` in the settings) delivers files that are kept unchanged
   in the landing zone (see sources.landing) before anything reads them.
2. **Check.** Each delivery is read in batches, mapped to its contract
   (config/contracts.yaml; column names, value vocabulary and date formats from the
   connector's ``mapping``) and typed in SQL. A delivery without a required column
   fails the source, naming the file and column. A row that breaks a type or
   vocabulary rule goes to ``raw.quarantined_rows`` with file, row, field, value and
   reason; the good rows load. Columns the contract does not know are kept (JSON in
   ``_extras``) and reported.
3. **Replace.** A raw table is partitioned by ``_partition_date``: the local date
   (reporting time zone) of the row's version column (``updated_at``). Snapshot files,
   SQL tables and APIs are read incrementally: the window runs from the local day of
   (newest version already loaded − overlap) to the interval's end, and exactly the
   partitions of that window are replaced. A source whose files are deliveries
   (``mode: deliveries``) replaces what this batch took instead. The first load of a
   source backfills everything before the interval's end.

Rows, quarantine and the delivery manifest (``raw.deliveries``) are written in one
transaction: a run killed half-way leaves the previous state, and running an interval
once, twice or three times leaves the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from servicepulse.settings import FileConnector, Settings
from servicepulse.sources.contracts import SQL_TYPES, SourceContract, load_contracts
from servicepulse.sources.errors import SourceError
from servicepulse.sources.landing import LandedFile, write_batch_manifest
from servicepulse.sources.readers import ROW_COLUMN, DeliveryFormatError, open_delivery
from servicepulse.sources.validate import (
    PlausibleWindow,
    literal,
    missing_fields,
    plan_checks,
    quarantine_sql,
    quote,
)
from servicepulse.warehouse import Warehouse

METADATA_COLUMNS = [
    ("_partition_date", "DATE"),
    ("_batch_id", "VARCHAR"),
    ("_source_file", "VARCHAR"),
    ("_source_row", "BIGINT"),
    ("_loaded_at", "TIMESTAMPTZ"),
    ("_extras", "VARCHAR"),
    # The delivered text of the columns the source's mapping renamed, rewrote or parsed
    # (JSON: delivered column -> text), so every mapped value can be traced back.
    ("_original", "VARCHAR"),
]
QUARANTINE_TABLE = "quarantined_rows"
QUARANTINE_COLUMNS = [
    ("source", "VARCHAR"), ("batch_id", "VARCHAR"), ("source_file", "VARCHAR"),
    ("landed_file", "VARCHAR"), ("source_row", "BIGINT"), ("field", "VARCHAR"),
    ("value", "VARCHAR"), ("reason", "VARCHAR"), ("quarantined_at", "TIMESTAMPTZ"),
    # The row's partition when its version column could be read (else null).
    ("partition_date", "DATE"),
]
DELIVERIES_TABLE = "deliveries"
DELIVERIES_COLUMNS = [
    ("source", "VARCHAR"), ("batch_id", "VARCHAR"), ("origin", "VARCHAR"),
    ("landed_file", "VARCHAR"), ("sha256", "VARCHAR"), ("size_bytes", "BIGINT"),
    ("format", "VARCHAR"), ("encoding", "VARCHAR"), ("rows_read", "BIGINT"),
    ("rows_loaded", "BIGINT"), ("rows_quarantined", "BIGINT"),
    ("rows_outside_window", "BIGINT"), ("new_columns", "VARCHAR"),
    ("interval_start", "TIMESTAMPTZ"), ("interval_end", "TIMESTAMPTZ"),
    ("window_start", "TIMESTAMPTZ"), ("received_at", "TIMESTAMPTZ"),
    ("loaded_at", "TIMESTAMPTZ"),
]
BACKFILL_FROM = date(1900, 1, 1)
# Rows named by row number in a load's summary (per reason; the rest are counted).
SAMPLE_ROWS = 20


@dataclass(frozen=True)
class LoadResult:
    source: str
    batch_id: str
    partitions: tuple[str, str]
    backfill: bool
    rows_in_delivery: int
    rows_loaded: int
    rows_quarantined: int
    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    new_columns: list[str] = field(default_factory=list)
    manifest: str | None = None


def raw_ddl(contract: SourceContract) -> list[tuple[str, str]]:
    return [(c.name, SQL_TYPES[c.type]) for c in contract.columns] + METADATA_COLUMNS


def plausible_window(settings: Settings, connector, now: datetime) -> PlausibleWindow:
    """Where a source's timestamps may lie: from the configured floor (the source's
    mapping.plausible_from, sources.plausible_from, the calendar's first_year, else the
    DAGs' start date), to the moment of loading plus sources.plausible_days_ahead."""
    mapping = getattr(connector, "mapping", None)
    floor = (getattr(mapping, "plausible_from", None) or settings.sources.plausible_from
             or (date(settings.calendar.first_year, 1, 1) if settings.calendar.first_year
                 else settings.schedule.start_date))
    return PlausibleWindow(datetime.combine(floor, time(), settings.tz),
                           now + timedelta(days=settings.sources.plausible_days_ahead))


def load_source(settings: Settings, warehouse: Warehouse, source: str,
                interval_start: datetime, interval_end: datetime,
                full_refresh: bool = False, now: datetime | None = None) -> LoadResult:
    """Extract ``source`` for [interval_start, interval_end) and replace its raw slice.
    ``now``: the moment of loading (default: the clock), the end of plausible dates."""
    contracts = load_contracts(settings.contracts_path)
    if source not in contracts:
        raise SourceError(source, settings.contracts_path, "no contract for this source")
    contract = contracts[source]
    connector = settings.sources.connectors.get(source)
    if connector is None:
        raise SourceError(source, settings.config_file or "settings",
                          "no connector configured under sources.connectors")
    tz = settings.tz
    start_day = interval_start.astimezone(tz).date()
    end_day = interval_end.astimezone(tz).date()
    raw = settings.warehouse.schema("raw")
    backfill = full_refresh or not _has_rows(warehouse, raw, source)
    by_delivery = isinstance(connector, FileConnector) and connector.mode == "deliveries"
    if by_delivery or not backfill:
        first_day = start_day
    else:
        first_day = BACKFILL_FROM
    if not by_delivery and not backfill:
        watermark = _watermark(warehouse, raw, contract, start_day)
        if watermark is not None:
            overlap = timedelta(minutes=connector.overlap_minutes)
            first_day = min(start_day, (watermark - overlap).astimezone(tz).date())
    window_start = None if first_day == BACKFILL_FROM else \
        datetime.combine(first_day, time(), tz)
    batch_id = f"{source}:{first_day.isoformat()}:{end_day.isoformat()}"

    landed = _extract(settings, contract, connector, window_start, interval_end)
    skipped: list[str] = []
    if by_delivery:
        landed, skipped = _not_yet_taken(warehouse, raw, source, batch_id, landed)

    loaded_at = datetime.now(UTC)
    plausible = plausible_window(settings, connector, now or loaded_at)
    window = None if by_delivery else (first_day, end_day)
    # DuckDB keeps what it wrote cached up to its limit (80 % of the machine): a cap
    # keeps a load's memory flat in the row count; beyond it DuckDB evicts or spills.
    warehouse.limit_memory(settings.sources.load_memory_limit)
    scratch = warehouse.scratch()
    with warehouse.transaction():
        for table, ddl in ((source, raw_ddl(contract)), (QUARANTINE_TABLE, QUARANTINE_COLUMNS),
                           (DELIVERIES_TABLE, DELIVERIES_COLUMNS)):
            warehouse.ensure_table(raw, table, ddl)
        if by_delivery:
            warehouse.execute(f'delete from "{raw}"."{source}" where _batch_id = ?', [batch_id])
        else:
            warehouse.execute(f'delete from "{raw}"."{source}" where _partition_date >= ? '
                              'and _partition_date < ?', [first_day, end_day])
        warehouse.execute(f'delete from "{raw}"."{DELIVERIES_TABLE}" where source = ? and '
                          'batch_id = ?', [source, batch_id])
        # The quarantine of what is replaced goes too; rows whose version cannot be
        # read belong to no partition and are found again in every snapshot.
        if by_delivery:
            warehouse.execute(f'delete from "{raw}"."{QUARANTINE_TABLE}" where source = ? '
                              'and batch_id = ?', [source, batch_id])
        else:
            warehouse.execute(f'delete from "{raw}"."{QUARANTINE_TABLE}" where source = ? and '
                              '(partition_date is null or (partition_date >= ? and '
                              'partition_date < ?))', [source, first_day, end_day])
        for delivery in landed:
            _load_delivery(settings, warehouse, scratch, contract, connector, delivery,
                           batch_id, window, loaded_at, plausible)
        for delivery in landed:
            warehouse.execute(
                f'insert into "{raw}"."{DELIVERIES_TABLE}" values '
                f'({", ".join("?" for _ in DELIVERIES_COLUMNS)})',
                [source, batch_id, delivery.origin, str(delivery.path), delivery.sha256,
                 delivery.size_bytes, delivery.format, delivery.encoding, delivery.rows_read,
                 delivery.rows_loaded, delivery.rows_quarantined, delivery.rows_outside_window,
                 ", ".join(delivery.new_columns) or None, interval_start, interval_end,
                 window_start, delivery.received_at, loaded_at])

    warehouse.prepare_for_lookups(raw, source, [contract.key, "_loaded_at", "_partition_date"])
    _prune_landing(settings, warehouse, source, interval_end)
    files = [d.manifest() for d in landed]
    manifest = write_batch_manifest(settings.landing_path, source, batch_id, {
        "source": source, "batch_id": batch_id, "connector": connector.kind,
        "interval": [interval_start.isoformat(), interval_end.isoformat()],
        "window": [window_start.isoformat() if window_start else None,
                   interval_end.isoformat()],
        "replaced": "this batch's deliveries" if by_delivery else
        f"partitions {first_day.isoformat()} – {end_day.isoformat()}",
        "loaded_at": loaded_at.isoformat(), "files": files, "skipped": skipped})
    return LoadResult(
        source, batch_id, (first_day.isoformat(), end_day.isoformat()), backfill,
        rows_in_delivery=sum(d.rows_read for d in landed),
        rows_loaded=sum(d.rows_loaded for d in landed),
        rows_quarantined=sum(d.rows_quarantined for d in landed),
        files=files, skipped=skipped,
        new_columns=sorted({c for d in landed for c in d.new_columns}),
        manifest=str(manifest))


def _extract(settings: Settings, contract: SourceContract, connector,
             window_start: datetime | None, window_end: datetime) -> list[LandedFile]:
    source = contract.name
    if connector.kind == "none":
        return []
    if connector.kind == "file":
        from servicepulse.sources.files import NoDeliveryFound, land_files

        try:
            return land_files(settings, source, connector)
        except NoDeliveryFound as missing:
            if connector.mode == "deliveries":
                return []
            raise SourceError(source, str(missing), "file does not exist") from None
        except ValueError as exc:
            raise SourceError(source, connector.location, str(exc)) from None
    if connector.kind == "sql":
        from servicepulse.sources.sql import extract_table

        return [extract_table(settings, source, connector, window_start, window_end,
                              contract.version_column)]
    from servicepulse.sources.http import extract_pages

    return extract_pages(settings, source, connector, window_start, window_end)


def _load_delivery(settings: Settings, warehouse: Warehouse, scratch, contract: SourceContract,
                   connector, delivery: LandedFile, batch_id: str,
                   window: tuple[date, date] | None, loaded_at: datetime,
                   plausible: PlausibleWindow | None = None) -> None:
    source, raw = contract.name, settings.warehouse.schema("raw")
    try:
        reader = open_delivery(delivery.path, delivery.format, delivery.encoding or "auto",
                               getattr(connector, "sheet", None),
                               records_field=getattr(connector, "records_field", "data"))
    except DeliveryFormatError as exc:
        raise SourceError(source, delivery.origin, str(exc)) from None
    required, undeclared = missing_fields(contract, connector.mapping, reader.columns)
    if (required or undeclared) and (reader.columns or delivery.format != "json_page"):
        raise SourceError(source, delivery.origin, _missing_message(
            contract, connector.mapping, reader.columns, required, undeclared), line=1,
            column=", ".join(required + undeclared))
    version = contract.column_names.index(contract.version_column)
    partition = f"cast(timezone({literal(settings.reporting_timezone)}, t_{version}) as date)"
    in_window = "true" if window is None else \
        f"({partition} >= date '{window[0]}' and {partition} < date '{window[1]}')"
    delivery.new_columns = []
    plan, plan_columns = None, None
    for table in _batches(source, delivery, reader):
        if list(table.column_names) != plan_columns:
            plan_columns = list(table.column_names)
            try:
                plan = plan_checks(contract, connector.mapping, plan_columns[:-1],
                                   settings.sources.naive_timezone(connector),
                                   settings.reporting_timezone, plausible)
            except ValueError as exc:
                raise SourceError(source, delivery.origin, str(exc)) from None
            delivery.new_columns = sorted(set(delivery.new_columns) | set(plan.extras))
        # DuckDB scans an Arrow table one chunk per thread: slicing (no copy) lets
        # every core check and insert; one 160k-row chunk ran at half the speed.
        # The batch is found by name as a local variable (DuckDB's replacement scan)
        # rather than registered: inside a transaction DuckDB keeps every registered
        # table alive until commit, which made memory grow with the delivery.
        incoming_batch = pa.Table.from_batches(table.to_batches(max_chunksize=16_384),
                                               schema=table.schema)
        checked = f"({plan.checked_sql}) as checked"
        # Two passes at most: the good rows are inserted (the insert counts them); the
        # rows outside the window need only the version column to count; whatever is
        # left is bad, and only a batch with bad rows pays for the quarantine pass.
        # A row whose version is broken (unreadable, implausible: 2099) belongs to no
        # partition: it is quarantined in every snapshot, never counted as outside.
        outside = 0
        if window is not None:
            # One pass counts them and names the first few (the count is taken before
            # the limit); the sample stops growing at SAMPLE_ROWS per delivery.
            wanted = SAMPLE_ROWS - len(delivery.outside_sample)
            first = scratch.execute(
                f"select {ROW_COLUMN}, cast(timezone({literal(settings.reporting_timezone)}, "
                f"t_{version}) as varchar), count(*) over () from {checked} "
                f"where e_{version} is null and t_{version} is not null and not {in_window} "
                f"order by {ROW_COLUMN} limit {max(wanted, 1)}").fetchall()
            outside = first[0][2] if first else 0
            delivery.outside_sample += [f"row {row}: {contract.version_column} {stamp}"
                                        for row, stamp, _ in first[:max(wanted, 0)]]
        values = ", ".join(f"t_{i}" for i in range(len(contract.columns)))
        loaded = warehouse.insert_from_scratch(
            scratch, raw, source, [n for n, _ in raw_ddl(contract)],
            f"select {values}, {partition}, {literal(batch_id)}, "
            f"{literal(delivery.origin)}, {ROW_COLUMN}, "
            f"{literal(loaded_at.isoformat())}::timestamptz, _extras, _original "
            f"from {checked} where not is_bad and {in_window}", incoming_batch)
        bad = table.num_rows - loaded - outside
        if bad:
            scratch.execute(f"create or replace temp table checked as select * from {checked} "
                            f"where is_bad and (e_{version} is not null or t_{version} is null "
                            f"or {in_window})")
            warehouse.insert_from_scratch(
                scratch, raw, QUARANTINE_TABLE, [n for n, _ in QUARANTINE_COLUMNS],
                f"select {literal(source)}, {literal(batch_id)}, {literal(delivery.origin)}, "
                f"{literal(str(delivery.path))}, source_row, field, value, reason, "
                f"{literal(loaded_at.isoformat())}::timestamptz, partition_date "
                f"from ({quarantine_sql(plan, 'true', f'case when e_{version} is null then {partition} end')}) "
                "order by source_row, field")
            scratch.execute("drop table checked")
        del incoming_batch
        delivery.rows_read += table.num_rows
        delivery.rows_loaded += loaded
        delivery.rows_outside_window += outside
        delivery.rows_quarantined += bad


def _missing_message(contract: SourceContract, mapping, delivered: list[str],
                     required: list[str], undeclared: list[str]) -> str:
    """Every missing field in one message, with what to do about each kind."""
    parts = []
    if required:
        parts.append(f"required field(s) missing: {', '.join(required)} (the source must "
                     "deliver these: map a column to each under mapping.columns)")
    if undeclared:
        parts.append(f"field(s) not delivered: {', '.join(undeclared)} (map a column to "
                     "each under mapping.columns, give a constant or default, or list them "
                     "under mapping.absent if the source does not have them)")
    return "; ".join(parts) + f"; the delivery's columns are {delivered}"


def _batches(source, delivery, reader):
    try:
        yield from reader.batches
    except DeliveryFormatError as exc:
        raise SourceError(source, delivery.origin, str(exc)) from None


def _not_yet_taken(warehouse: Warehouse, raw: str, source: str, batch_id: str,
                   landed: list[LandedFile]) -> tuple[list[LandedFile], list[str]]:
    """Deliveries mode: drop files whose bytes another batch already took, and take
    this batch's own earlier files again from the landing zone when they are gone
    from the drop folder (moved or cleaned up), so a re-run never loses them."""
    if not warehouse.table_exists(raw, DELIVERIES_TABLE):
        return landed, []
    taken = warehouse.fetch_frame(
        f'select sha256, origin, batch_id, landed_file, format, encoding, received_at '
        f'from "{raw}"."{DELIVERIES_TABLE}" where source = ?', [source])
    earlier = {row.sha256: row for row in taken.itertuples() if row.batch_id != batch_id}
    own = [row for row in taken.itertuples() if row.batch_id == batch_id]
    fresh, skipped, seen = [], [], set()
    for delivery in landed:
        if delivery.sha256 in earlier:
            first = earlier[delivery.sha256]
            skipped.append(f"{delivery.origin}: same content as {first.origin}, already "
                           f"taken by batch {first.batch_id}")
        elif delivery.sha256 in seen:
            skipped.append(f"{delivery.origin}: same content as another file of this batch")
        else:
            seen.add(delivery.sha256)
            fresh.append(delivery)
    for row in own:
        if row.sha256 in seen:
            continue
        kept = Path(row.landed_file)
        if not kept.is_file():
            raise SourceError(source, row.origin, f"taken by batch {batch_id} but its landed "
                              f"copy {kept} is missing: restore it or the drop")
        seen.add(row.sha256)
        fresh.append(LandedFile(source, row.origin, kept, row.sha256, kept.stat().st_size,
                                row.format, row.received_at.to_pydatetime(), row.encoding))
    return fresh, skipped


def _prune_landing(settings: Settings, warehouse: Warehouse, source: str,
                   interval_end: datetime) -> list[Path]:
    """Delete landed files no interval within ``landing_retention_days`` before this
    one used, and the manifests of batches that ended before then."""
    raw = settings.warehouse.schema("raw")
    cutoff = interval_end - timedelta(days=settings.sources.landing_retention_days)
    expired = warehouse.fetch_frame(
        f'select landed_file from "{raw}"."{DELIVERIES_TABLE}" where source = ? '
        "group by landed_file having max(interval_end) < ?", [source, cutoff])
    removed = []
    for name in expired["landed_file"]:
        path = Path(name)
        if path.is_file():
            path.unlink()
            removed.append(path)
    cutoff_day = cutoff.astimezone(settings.tz).date().isoformat()
    for manifest in (settings.landing_path / source / "batches").glob("*.json"):
        if manifest.stem.rsplit("_", 1)[-1] < cutoff_day:
            manifest.unlink()
            removed.append(manifest)
    return removed


def _watermark(warehouse: Warehouse, raw: str, contract: SourceContract,
               start_day: date) -> datetime | None:
    """The newest version loaded before the interval: the same on every re-run of the
    interval, so a re-run replaces exactly the partitions the first run did."""
    frame = warehouse.fetch_frame(
        f'select max({quote(contract.version_column)}) as newest from "{raw}"."{contract.name}" '
        "where _partition_date < ?", [start_day])
    newest = frame["newest"].iloc[0]
    if pd.isna(newest):
        return None
    return newest.to_pydatetime() if hasattr(newest, "to_pydatetime") else newest


def _has_rows(warehouse: Warehouse, schema: str, table: str) -> bool:
    if not warehouse.table_exists(schema, table):
        return False
    frame = warehouse.fetch_frame(f'select count(*) as n from "{schema}"."{table}"')
    return bool(frame["n"].iloc[0])
