"""Bad input, case by case: each delivery is loaded by a real `servicepulse load` and
ends in its expected outcome — loaded, quarantined with the reason, or one clear error
naming the file — and never in a traceback.

The base delivery is three good tickets; each case changes it one way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests import known_answers
from tests.conftest import write_config

HEADER = known_answers.TICKETS.splitlines()[0]
GOOD = [
    ("T1,C1,phone,tech_support,d_a,A1,general,2026-11-16T09:00:00+08:00,"
    "2026-11-16T09:20:00+08:00,2026-11-16T12:00:00+08:00,,1,600,resolved,,,"
    "2026-11-16T12:00:00+08:00"),
    ("T3,C1,online,consultation,d_b,B1,general,2026-11-17T14:00:00+08:00,"
    "2026-11-17T14:30:00+08:00,2026-11-18T09:00:00+08:00,,1,400,resolved,,,"
    "2026-11-18T09:00:00+08:00"),
    ("T4,C2,phone,installation,d_b,B2,general,2026-11-18T08:00:00+08:00,,,,,,open,,,"
    "2026-11-18T08:00:00+08:00"),
]
BAD_ROW = 3  # the second data row (the header is row 1)


def _with_second_row(transform) -> bytes:
    rows = list(GOOD)
    rows[1] = transform(rows[1])
    return ("\n".join([HEADER, *rows]) + "\n").encode("utf-8")


def _field(row: str, name: str, value: str) -> str:
    fields = row.split(",")
    fields[HEADER.split(",").index(name)] = value
    return ",".join(fields)


def _days_ahead(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat(timespec="seconds")


def _plain() -> str:
    return "\n".join([HEADER, *GOOD]) + "\n"


# case -> (delivery bytes, expected outcome)
# outcome: ("loaded", rows loaded) | ("quarantined", field, reason fragment) |
#          ("error", message fragment)
CASES = {
    "header only": ((HEADER + "\n").encode(), ("loaded", 0)),
    "0 bytes": (b"", ("error", "no header row")),
    "ragged row (two fields too many)": (
        _with_second_row(lambda row: row + ",extra,more"),
        ("quarantined", "(row)", "fields")),
    "ragged row (fields missing)": (
        _with_second_row(lambda row: ",".join(row.split(",")[:9])),
        ("quarantined", "(row)", "fields")),
    "NUL byte in the id": (
        _with_second_row(lambda row: "T\x003" + row[2:]),
        ("quarantined", "ticket_id", "control character")),
    "line feed in a code (quoted)": (
        _with_second_row(lambda row: _field(row, "department", '"d_b\nx"')),
        ("quarantined", "department", "line break")),
    "year 1": (
        _with_second_row(lambda row: _field(row, "created_at", "0001-01-01T00:00:00+08:00")),
        ("quarantined", "created_at", "outside the plausible dates")),
    "year 1960": (
        _with_second_row(lambda row: _field(row, "created_at", "1960-01-01T00:00:00+08:00")),
        ("quarantined", "created_at", "outside the plausible dates")),
    "year 2099 (the version)": (
        _with_second_row(lambda row: _field(row, "updated_at", "2099-01-01T00:00:00+08:00")),
        ("quarantined", "updated_at", "outside the plausible dates")),
    # A promise is planned ahead (the contract's planned: true): a week ahead is fine,
    # two years ahead is not.
    "a delivery promised a week ahead": (
        _with_second_row(lambda row: _field(row, "promised_at", _days_ahead(7))),
        ("loaded", 3)),
    "a delivery promised two years ahead": (
        _with_second_row(lambda row: _field(row, "promised_at", _days_ahead(730))),
        ("quarantined", "promised_at", "outside the plausible dates")),
    "30 February": (
        _with_second_row(lambda row: _field(row, "created_at", "2026-02-30T09:00:00+08:00")),
        ("quarantined", "created_at", "not an ISO 8601 timestamp")),
    # Ambiguous (1,200 is a thousand and two hundred, or 1.2): not guessed.
    "thousands separator in a number": (
        _with_second_row(lambda row: _field(row, "handle_seconds", '"1,200"')),
        ("quarantined", "handle_seconds", "not a whole number")),
    "; as the delimiter": (_plain().replace(",", ";").encode(), ("loaded", 3)),
    "tab as the delimiter": (_plain().replace(",", "\t").encode(), ("loaded", 3)),
    "GBK (GB18030) encoding": (
        _plain().replace("d_b", "售后").encode("gb18030"), ("loaded", 3)),
    "UTF-8 with a BOM": (b"\xef\xbb\xbf" + _plain().encode(), ("loaded", 3)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(tmp_path, case):
    content, expected = CASES[case]
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "crm_tickets.csv").write_bytes(content)
    config = write_config(tmp_path, sources)
    done = subprocess.run(
        [sys.executable, "-m", "servicepulse.cli", "load", "crm_tickets", "--date",
         "2026-11-23", "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "SERVICEPULSE_DEBUG": ""})
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    kind = expected[0]
    if kind == "error":
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert lines[0].startswith("error: source crm_tickets: ")
        assert str(sources / "crm_tickets.csv") in lines[0] and expected[1] in lines[0]
        return
    assert done.returncode == 0, done.stderr
    summary = done.stdout.splitlines()[0]
    if kind == "loaded":
        assert summary.startswith(f"crm_tickets: {expected[1]} of {expected[1]} rows loaded"), \
            done.stdout
        assert " 0 quarantined" in summary
        if "GBK" in case:
            assert _raw(config, "select count(*) from raw.crm_tickets where department = "
                                "'售后'") == 2
        return
    _, field, reason = expected
    assert summary.startswith("crm_tickets: 2 of 3 rows loaded"), done.stdout
    assert " 1 quarantined" in summary
    named = [line for line in done.stdout.splitlines() if line.startswith("  quarantined:")]
    assert len(named) == 1, done.stdout
    assert f", row {BAD_ROW}, {field}" in named[0] and reason in named[0], named[0]


def _raw(config: Path, sql: str):
    import duckdb

    from servicepulse.settings import load_settings

    settings = load_settings(config, environ={})
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def test_the_table_covers_what_the_issue_names():
    names = " ".join(CASES)
    for needed in ("header only", "0 bytes", "ragged", "NUL", "year 1", "1960", "2099",
                   "February", ";", "thousands", "GBK", "BOM"):
        assert needed in names
    json.dumps({case: str(outcome) for case, (_, outcome) in CASES.items()})


def test_a_row_dated_after_the_interval_is_counted_and_named_not_lost(tmp_path):
    """Not bad input, but not loaded by this night either: the summary says so, by row,
    and the night of its own date loads it."""
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "crm_tickets.csv").write_bytes(_with_second_row(
        lambda row: _field(row, "updated_at", "2026-11-25T10:00:00+08:00")))
    config = write_config(tmp_path, sources)

    def load(day: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "servicepulse.cli", "load", "crm_tickets", "--date", day,
             "--config", str(config)], capture_output=True, text=True, timeout=120,
            check=True)

    first = load("2026-11-23").stdout.splitlines()
    assert first[0].startswith("crm_tickets: 2 of 3 rows loaded")
    assert ", 0 quarantined, 1 outside the interval, 1 file(s)" in first[0]
    assert first[1] == (f"  outside the interval (loaded by the run for its day): "
                        f"{sources / 'crm_tickets.csv'}, row {BAD_ROW}: updated_at "
                        "2026-11-25 10:00:00")
    assert _raw(config, "select count(*) from raw.crm_tickets where ticket_id = 'T3'") == 0
    load("2026-11-25")
    assert _raw(config, "select count(*) from raw.crm_tickets where ticket_id = 'T3'") == 1
