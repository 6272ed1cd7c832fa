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

from servicepulse.errors import UserError

ROW_COLUMN = "_source_row"
# Why a record could not be read at all (its fields are then null): the loader
# quarantines it with this reason and its row number.
UNREADABLE = "_unreadable"
CSV_BLOCK_BYTES = 1 << 20
# A quoted field may hold line breaks; one that runs on for more lines than this is a
# stray quote, not a field.
MAX_RECORD_LINES = 1000


class DeliveryFormatError(UserError, ValueError):
    """The file cannot be read as its format at all (not: a bad value in a row)."""


@dataclass
class DeliveryReader:
    columns: list[str]                  # as delivered, in order
    batches: Iterator[pa.Table]


def detect_encoding(path: Path, declared: str) -> str:
    """auto: UTF-8 (a BOM is skipped) if the start reads as UTF-8, else GB18030, the
    encoding Chinese Excel and WPS write CSV exports in. A UTF-8 export with a few bad
    bytes (a broken row) stays UTF-8, so that only that row is set aside instead of
    every Chinese character being read wrong: valid UTF-8 multi-byte characters are
    structured enough that GB18030 text almost never forms them, so where they far
    outnumber the bad sequences the file is UTF-8."""
    if declared != "auto":
        return "utf-8" if declared == "utf-8-sig" else declared
    with path.open("rb") as handle:
        sample = handle.read(1 << 20)
    bad = 0

    def counting(error: UnicodeDecodeError) -> tuple[str, int]:
        nonlocal bad
        bad += 1
        return "", error.end

    codecs.register_error("servicepulse-count-bad", counting)
    # final=False: a character cut at the sample's end is not a bad one.
    text = codecs.getincrementaldecoder("utf-8")(errors="servicepulse-count-bad").decode(
        sample, final=False)
    if bad == 0:
        return "utf-8"
    multibyte = sum(1 for char in text if ord(char) > 0x7F)
    return "utf-8" if multibyte >= 4 * bad else "gb18030"


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


DELIMITERS = (",", ";", "\t", "|")


def detect_delimiter(header_text: str) -> str:
    """The delimiter that splits the header into the most columns: a comma unless the
    export uses ``;`` (European spreadsheets), a tab or ``|``."""
    best, widest = ",", 1
    for candidate in DELIMITERS:
        width = len(next(csv.reader(io.StringIO(header_text), delimiter=candidate), []))
        if width > widest:
            best, widest = candidate, width
    return best


def _csv(path: Path, encoding: str, batch_rows: int) -> DeliveryReader:
    import pyarrow.csv as pacsv

    with path.open("rb") as handle:
        first_line = handle.readline()
    try:
        header_text = first_line.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        raise DeliveryFormatError(f"header is not {encoding}: {exc}") from None
    delimiter = detect_delimiter(header_text)
    header = next(csv.reader(io.StringIO(header_text), delimiter=delimiter), [])
    names = [name.strip() for name in header]
    if not any(names):
        raise DeliveryFormatError("no header row")
    schema = pa.schema([*(pa.field(n, pa.string()) for n in names),
                        pa.field(ROW_COLUMN, pa.int64())])

    def batches() -> Iterator[pa.Table]:
        row = 2   # the header is row 1
        group: list[pa.RecordBatch] = []
        grouped = 0
        try:
            # Rows are typed later; here every column is text and "" stays "" (blank).
            # Small blocks: Arrow reads ahead a queue of them, so the block size sets
            # the reader's memory (1 MiB: ~40 MiB; 32 MiB: ~340 MiB and slower); blocks
            # are then grouped into batches of ``batch_rows`` for the checks. Opening
            # reads the first block, so it fails here too on a malformed record there.
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(
                    column_names=names, skip_rows=1, block_size=CSV_BLOCK_BYTES,
                    encoding="utf8" if encoding == "utf-8" else encoding),
                parse_options=pacsv.ParseOptions(newlines_in_values=True,
                                                 delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in names},
                    strings_can_be_null=False))
            for batch in reader:
                if _swallows_records(batch, len(names), delimiter):
                    raise pa.ArrowInvalid("a quoted field holds whole records")
                numbers = pa.array(range(row, row + batch.num_rows), pa.int64())
                row += batch.num_rows
                group.append(pa.RecordBatch.from_arrays(
                    [*batch.columns, numbers], names=[*names, ROW_COLUMN]))
                grouped += batch.num_rows
                if grouped >= batch_rows:
                    yield pa.Table.from_batches(group)
                    group, grouped = [], 0
        except (pa.ArrowException, UnicodeError):
            # A malformed record (too many or too few fields, broken quoting, bytes not
            # in the encoding, a cut last record) stops Arrow's reader for the whole
            # file. What it read before is good; the rest is read record by record, so
            # that only the malformed records are set aside, each with its row number.
            if group:
                yield pa.Table.from_batches(group)
            yield from careful_csv_batches(path, encoding, names, row - 2, batch_rows,
                                           delimiter)
            return
        if group or row == 2:
            yield pa.Table.from_batches(group, schema=schema)
    return DeliveryReader(names, batches())


def _csv_records(path: Path, encoding: str, width: int,
                 delimiter: str = ",") -> Iterator[tuple[list[str] | None, str | None]]:
    """Every record after the header as (fields, None), or (None, why it is malformed),
    in file order; blank lines are no records (as for Arrow's reader). A record may span
    lines inside a quoted field; where the quotes never balance into a record of the
    header's width, the first line alone is malformed and reading goes on after it, so a
    stray quote costs one record, not the rest of the file."""
    pending: list[tuple[int, bytes]] = []      # (line number, bytes) read ahead
    with path.open("rb") as handle:
        numbered = enumerate(handle, start=1)
        next(numbered, None)                   # the header

        def next_line() -> tuple[int, bytes] | None:
            return pending.pop(0) if pending else next(numbered, None)

        while (first := next_line()) is not None:
            lines = [first]
            text, bad_bytes = _decoded(first[1], encoding)
            if not text.strip("\r\n"):
                continue
            # An odd number of quotes: a quoted field goes on past the line's end.
            reached_end = False
            while text.count('"') % 2 and len(lines) < MAX_RECORD_LINES:
                following = next_line()
                if following is None:
                    reached_end = True
                    break
                lines.append(following)
                more, more_bad = _decoded(following[1], encoding)
                text, bad_bytes = text + more, bad_bytes or more_bad
            span = f" (line {lines[0][0]})" if len(lines) == 1 else \
                f" (lines {lines[0][0]}-{lines[-1][0]})"
            if text.count('"') % 2:
                pending[:0] = lines[1:]
                yield None, ("broken quoting: a quoted field never closes"
                             + (" (the file ends inside it: cut short?)"
                                if reached_end and len(lines) == 1 else "")
                             + f" (line {lines[0][0]})")
                continue
            fields = next(csv.reader(io.StringIO(text.rstrip("\r\n")),
                                     delimiter=delimiter), [])
            if len(lines) > 2 and _holds_whole_records(lines[1:-1], encoding, width, delimiter):
                # The quoted "field" holds lines that are whole records themselves: a
                # stray quote swallowed them. Only the first line is given up.
                pending[:0] = lines[1:]
                yield None, ("broken quoting: a quote opens a field that swallows the "
                             f"records after it (line {lines[0][0]})")
                continue
            if len(fields) != width:
                if len(lines) > 1:
                    # Balanced quotes but not one record: a stray quote paired with one
                    # on a later line. Only the first line is given up.
                    pending[:0] = lines[1:]
                    yield None, (f"broken quoting: {len(fields)} fields where the header "
                                 f"has {width} (line {lines[0][0]})")
                    continue
                cut = not lines[-1][1].endswith(b"\n") and len(fields) < width
                yield None, (f"{len(fields)} fields where the header has {width}"
                             + (" (the file ends inside it: cut short?)" if cut else "")
                             + span)
                continue
            if bad_bytes:
                yield None, f"not valid {encoding} text{span}"
                continue
            yield fields, None


def _holds_whole_records(lines: list[tuple[int, bytes]], encoding: str, width: int,
                         delimiter: str = ",") -> bool:
    for _, raw in lines:
        fields = next(csv.reader(io.StringIO(_decoded(raw, encoding)[0].rstrip("\r\n")),
                                 delimiter=delimiter), [])
        if len(fields) == width:
            return True
    return False


def _swallows_records(batch: pa.RecordBatch, width: int, delimiter: str = ",") -> bool:
    """Whether a value Arrow read holds a line break followed by a line with as many
    delimiters as a whole record: a stray quote that made Arrow read several records as
    one field (legitimate multi-line text, such as a comment, rarely has that many)."""
    import pyarrow.compute as pc

    for column in batch.columns:
        if not pc.any(pc.match_substring(column, "\n")).as_py():
            continue
        for value in pc.filter(column, pc.match_substring(column, "\n")).to_pylist():
            if any(line.count(delimiter) >= width - 1 for line in value.split("\n")[1:]):
                return True
    return False


def _decoded(raw: bytes, encoding: str) -> tuple[str, bool]:
    try:
        return raw.decode(encoding), False
    except UnicodeDecodeError:
        return raw.decode(encoding, errors="replace"), True


def careful_csv_batches(path: Path, encoding: str, names: list[str], skip: int,
                        batch_rows: int, delimiter: str = ",") -> Iterator[pa.Table]:
    """The records after the first ``skip`` as batches of text columns, with
    ``_unreadable`` saying why a malformed record could not be read (its fields are
    null); row numbers count records as Arrow's reader does (header = row 1)."""
    columns: list[list[str | None]] = [[] for _ in names]
    reasons: list[str | None] = []
    numbers: list[int] = []

    def table() -> pa.Table:
        arrays = {name: pa.array(values, pa.string()) for name, values in zip(names, columns)}
        arrays[UNREADABLE] = pa.array(reasons, pa.string())
        arrays[ROW_COLUMN] = pa.array(numbers, pa.int64())
        return pa.table(arrays)

    row = 1
    for fields, reason in _csv_records(path, encoding, len(names), delimiter):
        row += 1
        if row - 2 < skip:
            continue
        for index, values in enumerate(columns):
            values.append(fields[index] if fields is not None else None)
        reasons.append(reason)
        numbers.append(row)
        if len(numbers) >= batch_rows:
            yield table()
            columns, reasons, numbers = [[] for _ in names], [], []
    if numbers or row - 2 <= skip:
        yield table()


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
                    record = {UNREADABLE: f"not valid JSON: {exc.msg}"}
                if not isinstance(record, dict):
                    record = {UNREADABLE: "not a JSON object"}
                records.append(record)
                rows.append(number)
                if len(records) >= batch_rows:
                    yield _records_table(records, rows, [*names, UNREADABLE])
                    records, rows = [], []
        if records or not rows:
            yield _records_table(records, rows, [*names, UNREADABLE])
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
    records = [r if isinstance(r, dict) else {UNREADABLE: "not a JSON object"}
               for r in records]
    table = _records_table(records, list(range(1, len(records) + 1)),
                           [*names, UNREADABLE])
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
