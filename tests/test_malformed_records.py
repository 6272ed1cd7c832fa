"""Malformed records in a CSV delivery: each is quarantined with its row number and
why, the good rows load, nothing raises.

Each case writes a customers export of good rows with one malformed record at the
file's start, middle or end, or straddling the byte where the CSV reader's first 1 MiB
block ends; the expected rows are the ones the test wrote.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from servicepulse.cli import main
from servicepulse.load import load_source
from servicepulse.sources.readers import CSV_BLOCK_BYTES
from servicepulse.warehouse import connected
from tests.conftest import settings_for
from tests.kpi_harness import SHANGHAI

HEADER = "customer_id,name,phone,customer_type,service_level,region,created_at,updated_at"
STAMP = "2026-11-01T00:00:00+08:00"


def good_row(number: int, padding: int = 0) -> str:
    # ``padding`` lengthens the name so that a row can be made to end where wanted.
    return (f"C{number:06d},客户{number}{'x' * padding},138{number:08d},enterprise,basic,east,"
            f"{STAMP},{STAMP}")


# kind -> (the malformed record, what its reason must say)
REST = "enterprise,basic,east,2026-11-01T00:00:00+08:00,2026-11-01T00:00:00+08:00"
MALFORMED = {
    "too_many_fields": (f"B1,坏,1,{REST},extra,fields", "10 fields where the header has 8"),
    "too_few_fields": ("B1,坏,1,enterprise", "4 fields where the header has 8"),
    "broken_quoting": (f'B1,"坏 name,1,{REST}', "broken quoting"),
    # Two bytes that are no UTF-8 (written through surrogateescape).
    "wrong_encoding": (f"B1,\udcff\udcfe,1,{REST}", "not valid utf-8 text"),
    # A character cut after two of its three bytes (坏 is e5 9d 8f): bytes GB18030
    # would read without complaint, so a misread encoding would garble every name.
    "cut_character": (f"B1,\udce5\udc9d,1,{REST}", "not valid utf-8 text"),
}
POSITIONS = ("start", "middle", "end", "block_boundary")
GOOD_ROWS = 40


def write_export(path, kind: str, position: str) -> tuple[list[str], int]:
    """Write the export; return the good ids and the malformed record's row number."""
    bad = MALFORMED[kind][0]
    numbers = list(range(1, GOOD_ROWS + 1))
    if position == "block_boundary":
        # Good rows up to just before 1 MiB, the last one padded so that the malformed
        # record starts half its length before the block's end and runs across it.
        bad_bytes = len(bad.encode("utf-8", "surrogateescape"))
        target = CSV_BLOCK_BYTES - bad_bytes // 2
        rows, before, n = [], len(HEADER) + 1, 0
        while before + 2 * len(good_row(n + 1, 200).encode()) < target:
            n += 1
            rows.append(good_row(n, 200))
            before += len(rows[-1].encode()) + 1
        n += 1
        rows.append(good_row(n, target - before - len(good_row(n).encode()) - 1))
        before += len(rows[-1].encode()) + 1
        numbers = list(range(1, n + 1))
        assert before == target and before < CSV_BLOCK_BYTES < before + bad_bytes
        rows += [bad] + [good_row(n) for n in range(len(numbers) + 1, len(numbers) + 6)]
        numbers += list(range(len(numbers) + 1, len(numbers) + 6))
        bad_index = len(rows) - 6
    else:
        rows = [good_row(n) for n in numbers]
        bad_index = {"start": 0, "middle": GOOD_ROWS // 2, "end": GOOD_ROWS}[position]
        rows.insert(bad_index, bad)
    text = HEADER + "\n" + "\n".join(rows)
    if not (kind in ("too_few_fields", "broken_quoting") and position == "end"):
        text += "\n"                      # a cut last record has no line end
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return [f"C{n:06d}" for n in numbers], bad_index + 2   # header = row 1


def _load(tmp_path, path):
    settings = settings_for(tmp_path, path.parent, **{"sources.connectors": {
        "crm_customers": {"location": path.name}}})
    with connected(settings) as warehouse:
        result = load_source(settings, warehouse, "crm_customers",
                             datetime(2026, 11, 23, tzinfo=SHANGHAI),
                             datetime(2026, 11, 24, tzinfo=SHANGHAI))
        names = dict(warehouse.fetch_frame(
            "select customer_id, name from raw.crm_customers order by 1").itertuples(
                index=False))
        ids = list(names)
        quarantined = warehouse.fetch_frame(
            "select source_row, field, reason from raw.quarantined_rows").to_dict("records")
    return result, ids, quarantined, names


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_record_is_quarantined_and_the_good_rows_load(tmp_path, kind, position):
    path = tmp_path / "sources" / "customers.csv"
    path.parent.mkdir()
    good_ids, bad_row = write_export(path, kind, position)
    result, ids, quarantined, names = _load(tmp_path, path)
    assert ids == good_ids
    assert all(name.startswith(f"客户{int(key[1:])}") for key, name in names.items())
    assert (result.rows_loaded, result.rows_quarantined) == (len(good_ids), 1)
    (entry,) = quarantined
    assert entry["source_row"] == bad_row and entry["field"] == "(row)"
    assert MALFORMED[kind][1] in entry["reason"]


def test_a_stray_quote_costs_one_record_not_the_rest_of_the_file(tmp_path):
    path = tmp_path / "sources" / "customers.csv"
    path.parent.mkdir()
    rows = [good_row(n) for n in range(1, 11)]
    rows[2] = rows[2].replace("客户3", '"客户3')          # opens a field, never closes it
    rows[6] = rows[6].replace("客户7", 'say "hi"')        # a quote later on pairs with it
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result, ids, quarantined, _ = _load(tmp_path, path)
    assert result.rows_quarantined == 1
    assert [q["source_row"] for q in quarantined] == [4]
    assert "broken quoting" in quarantined[0]["reason"]
    assert len(ids) == 9 and "C000003" not in ids and "C000007" in ids


def test_a_header_only_file_loads_nothing(tmp_path):
    path = tmp_path / "sources" / "customers.csv"
    path.parent.mkdir()
    path.write_text(HEADER + "\n", encoding="utf-8")
    result, ids, quarantined, _ = _load(tmp_path, path)
    assert (result.rows_in_delivery, ids, quarantined) == (0, [], [])


def test_an_empty_file_is_one_line_naming_it_not_a_traceback(tmp_path, capsys):
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "customers.csv").write_bytes(b"")
    settings = settings_for(tmp_path, sources, **{"sources.connectors": {
        "crm_customers": {"location": "customers.csv"}}})
    code = main(["load", "crm_customers", "--date", "2026-11-23",
                 "--config", str(settings.config_file)])
    captured = capsys.readouterr()
    assert code != 0 and "Traceback" not in captured.err + captured.out
    assert "customers.csv" in captured.err and "no header row" in captured.err


def test_an_empty_sql_extract_loads_nothing(tmp_path):
    import sqlite3

    database = tmp_path / "crm.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute(f"create table customers ({HEADER.replace(',', ' text, ')} text)")
    settings = settings_for(tmp_path, tmp_path, **{"sources.connectors": {"crm_customers": {
        "kind": "sql", "url": f"sqlite:///{database}", "table": "customers",
        "mapping": {"timezone": "UTC"}}}})
    with connected(settings) as warehouse:
        result = load_source(settings, warehouse, "crm_customers",
                             datetime(2026, 11, 23, tzinfo=SHANGHAI),
                             datetime(2026, 11, 24, tzinfo=SHANGHAI))
        assert warehouse.table_exists("raw", "crm_customers")
    assert (result.rows_in_delivery, result.rows_loaded, len(result.files)) == (0, 0, 1)
