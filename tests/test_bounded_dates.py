"""One absurd date cannot stop the nightly or fill the disk.

An audit dated 0001-01-01 (and one 1960-01-01), each with a sane version, used to
load without complaint and make the daily KPI build spill until the disk was full
(78 GB in 231 s) or die out of memory: every date spine ran from year 1. Now such a
row is quarantined at load with its reason, and the marts span the data's real
years. The bounds below are generous (seconds and megabytes, not the gigabytes and
the hours of the failure); the point is that they hold at all.
"""

from __future__ import annotations

import time

from servicepulse.warehouse import connected
from tests import known_answers
from tests.conftest import settings_for
from tests.kpi_harness import UNTIL, load_and_build

ABSURD = {"AU8": "0001-01-01T10:00:00+08:00", "AU9": "1960-01-01T10:00:00+08:00"}


def test_an_absurd_date_is_quarantined_and_the_build_stays_small(tmp_path):
    sources = known_answers.write(tmp_path / "sources")
    with (sources / "audits.csv").open("a", encoding="utf-8") as audits:
        for audit_id, audited_at in ABSURD.items():
            audits.write(f"{audit_id},process_audit,d_a,A1,{audited_at},8,8,8,"
                         "2026-11-20T12:00:00+08:00\n")
    settings = settings_for(tmp_path, sources)

    started = time.monotonic()
    load_and_build(settings, UNTIL)
    elapsed = time.monotonic() - started

    with connected(settings, read_only=True) as warehouse:
        quarantined = warehouse.fetch_frame(
            "select source_row, field, value, reason from raw.quarantined_rows "
            "where source = 'audits' order by source_row")
        audits = warehouse.fetch_frame("select audit_id from raw.audits order by audit_id")
        years = warehouse.fetch_frame(
            "select min(calendar_date) as first, max(calendar_date) as last "
            "from marts.dim_dates")
    assert list(audits["audit_id"]) == ["AU1"]
    assert list(quarantined["source_row"]) == [3, 4]
    assert set(quarantined["field"]) == {"audited_at"}
    assert all(reason.startswith("outside the plausible dates 2000-01-01 – ")
               for reason in quarantined["reason"])
    # The date spine covers the data's years (customers since 2025-01-01 local time,
    # which is 2024 in UTC, to 2027), not two thousand years.
    assert years["first"].iloc[0].year >= 2024 and years["last"].iloc[0].year <= 2027
    # A build of a few rows: well under these bounds on any machine that runs the suite.
    assert elapsed < 300
    assert settings.duckdb_path.stat().st_size < 200 * 1024 * 1024
