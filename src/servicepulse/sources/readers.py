"""Read a landed delivery as batches of text columns, each row with its row number.

Every value arrives as text (or null) and is typed later against the contract, in
SQL, so that one bad value quarantines its row instead of failing the whole file.
Row numbers are what a person opening the file sees: a CSV's or a sheet's row with
the header as row 1, a JSON-lines file's line, a record's position in an API page.
Memory is one batch, whatever the file's size.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import pyarrow as pa

ROW_COLUMN = "_source_row"


class DeliveryFormatError(ValueError):
    """The file cannot be read as its format at all (not: a bad value in a row)."""


@dataclass
class DeliveryReader:
    columns: list[str]                  # as delivered, in order
    batches: Iterator[pa.Table]


def detect_encoding(path: Path, declared: str) -> str:
    """auto: UTF-8 (a BOM is skipped) if the start decodes as UTF-8, else GB18030, the
    encoding Chinese Excel and WPS write CSV exports in."""
    if declared != "auto":
        return "utf-8" if declared == "utf-8-sig" else declared
    with path.open("rb") as handle:
        sample = handle.read(1 << 20)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


def open_delivery(path: Path, fmt: str, encoding: str = "auto", sheet: str | None = None,
                  batch_rows: int = 100_000, records_field: str = "data") -> DeliveryReader:
    if fmt == "csv":
        return _csv(path, detect_encoding(path, encoding), batch_rows)
    if fmt == "jsonl":
        return _json_lines(path, batch_rows)
    if fmt == "json_page":
        return _json_page(path, records_field)
    if fmt == "xlsx":
        return _xlsx(path, sheet, batch_rows)
    raise DeliveryFormatError(f"unknown format {fmt!r}")


def _csv(path: Path, encoding: str, batch_rows: int) -> DeliveryReader:
    import pyarrow.csv as pacsv

    with path.open("rb") as handle:
        first_line = handle.readline()
    try:
        header_text = first_line.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        raise DeliveryFormatError(f"header is not {encoding}: {exc}") from None
    header = next(csv.reader(io.StringIO(header_text)), [])
    names = [name.strip() for name in header]
    if not any(names):
        raise DeliveryFormatError("no header row")
    # Rows are typed later; here every column is text and "" stays "" (blank).
    # Small blocks: Arrow reads ahead a queue of them, so the block size sets the
    # reader's memory (1 MiB: ~40 MiB; 32 MiB: ~340 MiB and slower); blocks are then
    # grouped into batches of ``batch_rows`` for the checks.
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=names, skip_rows=1, block_size=1 << 20,
            encoding="utf8" if encoding == "utf-8" else encoding),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names}, strings_can_be_null=False))

    def batches() -> Iterator[pa.Table]:
        row = 2   # the header is row 1
        group: list[pa.RecordBatch] = []
        grouped = 0
        try:
            for batch in reader:
                numbers = pa.array(range(row, row + batch.num_rows), pa.int64())
                row += batch.num_rows
                group.append(pa.RecordBatch.from_arrays(
                    [*batch.columns, numbers], names=[*names, ROW_COLUMN]))
                grouped += batch.num_rows
                if grouped >= batch_rows:
                    yield pa.Table.from_batches(group)
                    group, grouped = [], 0
        except pa.ArrowInvalid as exc:
            raise DeliveryFormatError(f"not readable as CSV after row {row - 1}: {exc}") \
                from None
        if group or row == 2:
            yield pa.Table.from_batches(group, schema=pa.schema(
                [*(pa.field(n, pa.string()) for n in names), pa.field(ROW_COLUMN, pa.int64())]))
    return DeliveryReader(names, batches())


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _records_table(records: list[dict], rows: list[int], names: list[str]) -> pa.Table:
    columns = {name: pa.array([_text(r.get(name)) for r in records], pa.string())
               for name in names}
    columns[ROW_COLUMN] = pa.array(rows, pa.int64())
    return pa.table(columns)


def _json_lines(path: Path, batch_rows: int) -> DeliveryReader:
    # Column names: the union of keys in the first batch; later keys are new columns
    # too, so the whole file's keys are collected in a first pass (a cheap scan).
    names: dict[str, None] = {}
    with path.open("r", encoding="utf-8-sig") as handle:
        for line in handle:
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue   # reported per row below
                if isinstance(record, dict):
                    names.update(dict.fromkeys(record))

    def batches() -> Iterator[pa.Table]:
        records, rows = [], []
        with path.open("r", encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    record = {"_unreadable": f"not valid JSON: {exc.msg}"}
                if not isinstance(record, dict):
                    record = {"_unreadable": "not a JSON object"}
                records.append(record)
                rows.append(number)
                if len(records) >= batch_rows:
                    yield _records_table(records, rows, [*names, "_unreadable"])
                    records, rows = [], []
        if records or not rows:
            yield _records_table(records, rows, [*names, "_unreadable"])
    return DeliveryReader(list(names), batches())


def _json_page(path: Path, records_field: str) -> DeliveryReader:
    try:
        page = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise DeliveryFormatError(f"API page is not JSON: {exc}") from None
    records = page.get(records_field) if isinstance(page, dict) else None
    if not isinstance(records, list):
        raise DeliveryFormatError(f"API page has no list {records_field!r}")
    names: dict[str, None] = {}
    for record in records:
        if isinstance(record, dict):
            names.update(dict.fromkeys(record))
    records = [r if isinstance(r, dict) else {"_unreadable": "not a JSON object"}
               for r in records]
    table = _records_table(records, list(range(1, len(records) + 1)),
                           [*names, "_unreadable"])
    return DeliveryReader(list(names), iter([table]))


def _xlsx(path: Path, sheet: str | None, batch_rows: int) -> DeliveryReader:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a broken book
        raise DeliveryFormatError(f"not readable as XLSX: {exc}") from None
    if sheet is not None and sheet not in book.sheetnames:
        raise DeliveryFormatError(f"no sheet {sheet!r} (sheets: {book.sheetnames})")
    rows = book[sheet].iter_rows(values_only=True) if sheet else \
        book.worksheets[0].iter_rows(values_only=True)
    header = next(rows, None)
    if not header:
        raise DeliveryFormatError("no header row")
    names = [_text(name).strip() if name is not None else "" for name in header]

    def batches() -> Iterator[pa.Table]:
        records, numbers = [], []
        for number, values in enumerate(rows, start=2):
            if all(v is None for v in values):
                continue
            records.append(dict(zip(names, values, strict=False)))
            numbers.append(number)
            if len(records) >= batch_rows:
                yield _records_table(records, numbers, names)
                records, numbers = [], []
        yield _records_table(records, numbers, names)
        book.close()
    return DeliveryReader(names, batches())
