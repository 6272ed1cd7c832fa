"""Load one source's delivery into its raw table, for one data interval, idempotently.

A raw table is partitioned by ``_partition_date``: the local date (reporting time
zone) of each row's ``updated_at``, i.e. the day the source system last changed the
row. Loading the interval [start, end) replaces exactly the partitions of that
interval in one transaction, so running a day once, twice or three times leaves the
same rows. The first load of a source (empty or missing table) backfills every
partition up to the end of the interval.

The whole delivery is checked against the source's contract first. A missing file,
a missing required column or a value that does not parse stops that source with a
message naming file, line and column, and nothing of it is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from servicepulse.settings import Settings
from servicepulse.sources.contracts import CONTRACTS, SQL_TYPES, SourceContract
from servicepulse.warehouse import Warehouse

METADATA_COLUMNS = [
    ("_partition_date", "DATE"),
    ("_batch_id", "VARCHAR"),
    ("_source_file", "VARCHAR"),
    ("_source_row", "BIGINT"),
    ("_loaded_at", "TIMESTAMPTZ"),
]
_HAS_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


class SourceError(ValueError):
    """A delivery that breaks its contract. The message names file, line and column."""

    def __init__(self, source: str, path: Path, message: str, line: int | None = None,
                 column: str | None = None) -> None:
        where = str(path) + (f", line {line}" if line else "") + (
            f", column {column!r}" if column else "")
        super().__init__(f"source {source}: {where}: {message}")
        self.source, self.path, self.line, self.column = source, path, line, column


@dataclass(frozen=True)
class LoadResult:
    source: str
    file: str
    rows_in_delivery: int
    rows_loaded: int
    partitions: tuple[str, str]
    backfill: bool
    batch_id: str


def read_delivery(contract: SourceContract, path: Path, naive_tz: str | None) -> pd.DataFrame:
    """Read and type a delivery; raise SourceError on the first contract breach."""
    if not path.is_file():
        raise SourceError(contract.name, path, "file does not exist")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise SourceError(contract.name, path, f"cannot be read as UTF-8 CSV: {exc}") from None
    raw.columns = [c.strip() for c in raw.columns]
    missing = [c.name for c in contract.columns if c.required and c.name not in raw.columns]
    if missing:
        raise SourceError(contract.name, path,
                          f"required column missing (header has {list(raw.columns)})",
                          line=1, column=missing[0])

    typed = pd.DataFrame(index=raw.index)
    for column in contract.columns:
        if column.name not in raw.columns:
            typed[column.name] = pd.Series(pd.NA, index=raw.index, dtype="string")
            continue
        text = raw[column.name].str.strip()
        blank = text == ""
        if column.not_null and blank.any():
            _fail(contract, path, column.name, blank, text, "value is required")
        if column.type == "timestamp":
            values = _parse_timestamps(text, blank, naive_tz)
        elif column.type == "integer":
            values = pd.to_numeric(text.where(~blank), errors="coerce")
            bad = ~blank & (values.isna() | (values != values.round()))
            if bad.any():
                _fail(contract, path, column.name, bad, text, "not a whole number")
            values = values.astype("Int64")
        elif column.type == "number":
            values = pd.to_numeric(text.where(~blank), errors="coerce")
            if (bad := ~blank & values.isna()).any():
                _fail(contract, path, column.name, bad, text, "not a number")
        else:
            values = text.where(~blank).astype("string")
        if column.allowed:
            bad = ~blank & ~text.isin(column.allowed)
            if bad.any():
                _fail(contract, path, column.name, bad, text,
                      f"not one of {', '.join(column.allowed)}")
        if column.type == "timestamp":
            bad = ~blank & values.isna()
            if bad.any():
                _fail(contract, path, column.name, bad, text,
                      "not an ISO 8601 timestamp with a UTC offset")
        typed[column.name] = values
    typed["_source_row"] = raw.index.to_numpy() + 2  # line number: 1-based, after the header
    return typed


def _parse_timestamps(text: pd.Series, blank: pd.Series, naive_tz: str | None) -> pd.Series:
    has_offset = text.str.contains(_HAS_OFFSET)
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    with_offset = ~blank & has_offset
    if with_offset.any():
        result[with_offset] = pd.to_datetime(text[with_offset], format="ISO8601", utc=True,
                                             errors="coerce")
    naive = ~blank & ~has_offset
    if naive.any() and naive_tz:
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        result[naive] = local.dt.tz_localize(ZoneInfo(naive_tz), ambiguous="NaT",
                                             nonexistent="NaT").dt.tz_convert("UTC")
    return result


def _fail(contract, path, column, bad_mask, text, message):
    first = bad_mask[bad_mask].index[0]
    count = int(bad_mask.sum())
    more = f" ({count - 1} more rows like it)" if count > 1 else ""
    raise SourceError(contract.name, path, f"{message}: {text[first]!r}{more}",
                      line=int(first) + 2, column=column)


def raw_ddl(contract: SourceContract) -> list[tuple[str, str]]:
    return [(c.name, SQL_TYPES[c.type]) for c in contract.columns] + METADATA_COLUMNS


def load_source(settings: Settings, warehouse: Warehouse, source: str,
                interval_start: datetime, interval_end: datetime,
                full_refresh: bool = False) -> LoadResult:
    """Replace the raw partitions of [interval_start, interval_end) for ``source``."""
    contract = CONTRACTS[source]
    try:
        filename = settings.sources.files[source]
    except KeyError:
        raise SourceError(source, settings.sources_dir,
                          "no file configured under sources.files") from None
    path = settings.sources_dir / filename
    frame = read_delivery(contract, path, settings.sources.naive_timestamp_timezone)

    tz = settings.tz
    start_day = interval_start.astimezone(tz).date()
    end_day = interval_end.astimezone(tz).date()
    schema = settings.warehouse.schema("raw")
    backfill = full_refresh or not _has_rows(warehouse, schema, source)
    first_day = date(1900, 1, 1) if backfill else start_day

    partition = frame[contract.version_column].dt.tz_convert(tz).dt.date
    selected = frame[(partition >= first_day) & (partition < end_day)].copy()
    selected["_partition_date"] = partition[selected.index]
    batch_id = f"{source}:{first_day.isoformat()}:{end_day.isoformat()}"
    selected["_batch_id"] = batch_id
    selected["_source_file"] = str(path)
    selected["_loaded_at"] = pd.Timestamp(datetime.now(UTC))

    warehouse.replace_slice(schema, source, raw_ddl(contract), selected,
                            '"_partition_date" >= ? AND "_partition_date" < ?',
                            [first_day, end_day])
    return LoadResult(source, str(path), len(frame), len(selected),
                      (first_day.isoformat(), end_day.isoformat()), backfill, batch_id)


def _has_rows(warehouse: Warehouse, schema: str, table: str) -> bool:
    if not warehouse.table_exists(schema, table):
        return False
    frame = warehouse.fetch_frame(f'SELECT count(*) AS n FROM "{schema}"."{table}"')
    return bool(frame["n"].iloc[0])
