import csv
import hashlib
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import yaml

from servicepulse.load import SourceError, load_source
from servicepulse.sources.contracts import load_contracts
from servicepulse.warehouse import connected
from tests import known_answers
from tests.conftest import settings_for

SH = ZoneInfo("Asia/Shanghai")


def _table_digest(settings, table):
    with connected(settings) as warehouse:
        frame = warehouse.fetch_frame(
            f'select * exclude (_loaded_at) from raw."{table}" order by all')
    return len(frame), hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


@pytest.fixture
def settings(tmp_path):
    return settings_for(tmp_path, known_answers.write(tmp_path / "sources"))


def test_rerunning_an_interval_gives_identical_rows(settings):
    digests = []
    with connected(settings) as warehouse:
        load_source(settings, warehouse, "crm_tickets", datetime(2026, 11, 17, tzinfo=SH),
                    datetime(2026, 11, 18, tzinfo=SH))  # first load: backfill up to 18 Nov
    for _ in range(3):
        with connected(settings) as warehouse:
            result = load_source(settings, warehouse, "crm_tickets",
                                 datetime(2026, 11, 18, tzinfo=SH),
                                 datetime(2026, 11, 19, tzinfo=SH))
        digests.append(_table_digest(settings, "crm_tickets"))
    assert not result.backfill
    # 18 Nov (local) holds T2's correction and T3 and T4; the overlap (an hour before the
    # newest change loaded before the interval) reaches back into 17 Nov, whose one row
    # is read again: the same 2 partitions, 4 rows, replaced on every run.
    assert result.partitions == ("2026-11-17", "2026-11-19")
    assert result.rows_loaded == 4
    assert digests[0] == digests[1] == digests[2]
    # T0 T1 T2 T5 T10 T11 T12 T12' (backfill) + T2' T3 T4 (18 Nov); not T6
    assert digests[0][0] == 11


def test_first_load_backfills_everything_before_the_interval_end(settings):
    with connected(settings) as warehouse:
        result = load_source(settings, warehouse, "survey_responses",
                             datetime(2026, 11, 23, tzinfo=SH), datetime(2026, 11, 24, tzinfo=SH))
    assert result.backfill and result.rows_loaded == result.rows_in_delivery == 8


def _load(settings, source, day=23, full_refresh=False):
    with connected(settings) as warehouse:
        return load_source(settings, warehouse, source, datetime(2026, 11, day, tzinfo=SH),
                           datetime(2026, 11, day + 1, tzinfo=SH), full_refresh=full_refresh)


def _contract_rows(settings, table):
    """The raw rows as the contract sees them (no load metadata), in a stable order."""
    columns = ", ".join(f'"{c}"' for c in load_contracts()[table].column_names)
    with connected(settings) as warehouse:
        frame = warehouse.fetch_frame(f'select {columns} from raw."{table}" order by all')
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _quarantine(settings):
    with connected(settings) as warehouse:
        frame = warehouse.fetch_frame(
            "select source, source_file, source_row, field, value, reason "
            "from raw.quarantined_rows order by source, source_row, field")
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _expect_failure(settings, source, line, column, words):
    with pytest.raises(SourceError) as error:
        _load(settings, source)
    message = str(error.value)
    assert error.value.line == line and error.value.column == column
    assert str(error.value.path) in message and words in message
    with connected(settings) as warehouse:
        assert not warehouse.table_exists("raw", source)  # nothing partial left behind
    return message


def test_missing_file_names_the_file(settings):
    (settings.sources_dir / "complaints.csv").unlink()
    with pytest.raises(SourceError, match=r"complaints\.csv: file does not exist"):
        _load(settings, "complaints")


def test_a_column_neither_delivered_nor_declared_absent_fails_the_source(settings):
    path = settings.sources_dir / "crm_tickets.csv"
    path.write_text(path.read_text().replace(",priority,", ",prio,", 1))
    message = _expect_failure(settings, "crm_tickets", 1, "priority", "not delivered: priority")
    assert "mapping.absent" in message          # says how to onboard a source without it
    assert _load(settings, "complaints").rows_loaded == 5   # the other sources still load


def test_every_missing_column_is_named_in_one_message(settings):
    path = settings.sources_dir / "crm_tickets.csv"
    header, rest = path.read_text().split("\n", 1)
    header = header.replace("ticket_id", "id").replace("priority", "prio") \
        .replace("handle_seconds", "handling")
    path.write_text(header + "\n" + rest)
    message = _expect_failure(settings, "crm_tickets", 1, "ticket_id, priority, handle_seconds",
                              "required field(s) missing: ticket_id")
    assert "not delivered: priority, handle_seconds" in message


def test_a_bad_value_quarantines_its_row_and_the_good_rows_load(settings):
    path = settings.sources_dir / "crm_tickets.csv"
    lines = path.read_text().splitlines()
    assert lines[5].startswith("T3,")
    lines[5] = lines[5].replace("2026-11-17T14:30:00+08:00", "17/11/2026 14:30")
    lines[6] = lines[6].replace(",installation,", ",repair,").replace(",open,", ",,")
    path.write_text("\n".join(lines) + "\n")
    result = _load(settings, "crm_tickets")
    # 12 rows up to 24 Nov, T3 (row 6) and T4 (row 7) broken: 10 load, 2 quarantined.
    assert (result.rows_in_delivery, result.rows_loaded, result.rows_quarantined) == (12, 10, 2)
    assert {r["ticket_id"] for r in _contract_rows(settings, "crm_tickets")} == {
        "T0", "T1", "T2", "T5", "T6", "T10", "T11", "T12"}
    assert _quarantine(settings) == [
        {"source": "crm_tickets", "source_file": str(path), "source_row": 6,
         "field": "first_response_at", "value": "17/11/2026 14:30",
         "reason": "not an ISO 8601 timestamp with a UTC offset"},
        {"source": "crm_tickets", "source_file": str(path), "source_row": 7,
         "field": "service_type", "value": "repair", "reason":
         "not one of tech_support, installation, after_sales, consultation, delivery"},
        {"source": "crm_tickets", "source_file": str(path), "source_row": 7,
         "field": "status", "value": None, "reason": "value is required"},
    ]
    # Re-running the interval replaces its quarantine too: nothing doubles.
    _load(settings, "crm_tickets")
    assert len(_quarantine(settings)) == 3


def test_a_failed_reload_keeps_the_previous_good_rows(settings):
    _load(settings, "crm_tickets")
    before = _table_digest(settings, "crm_tickets")
    path = settings.sources_dir / "crm_tickets.csv"
    path.write_text(path.read_text().replace("ticket_id,", "id,", 1))
    with pytest.raises(SourceError, match=r"required field\(s\) missing: ticket_id"):
        _load(settings, "crm_tickets")
    assert _table_digest(settings, "crm_tickets") == before


def test_new_columns_are_kept_and_reported(settings):
    path = settings.sources_dir / "audits.csv"
    lines = path.read_text().splitlines()
    lines = [lines[0] + ",auditor"] + [line + f",审核员{i}" for i, line in enumerate(lines[1:])]
    path.write_text("\n".join(lines) + "\n")
    result = _load(settings, "audits")
    assert result.new_columns == ["auditor"]
    assert result.files[0]["new_columns"] == ["auditor"]
    with connected(settings) as warehouse:
        extras = warehouse.fetch_frame("select _extras from raw.audits order by _source_row")
    assert json.loads(extras["_extras"].iloc[0]) == {"auditor": "审核员0"}


def test_every_delivery_is_landed_unchanged_with_a_manifest(settings):
    result = _load(settings, "survey_responses")
    original = (settings.sources_dir / "surveys.csv").read_bytes()
    (entry,) = result.files
    assert Path(entry["path"]).read_bytes() == original
    assert entry["sha256"] == hashlib.sha256(original).hexdigest()
    assert (entry["rows_read"], entry["rows_loaded"]) == (8, 8)
    manifest = json.loads(Path(result.manifest).read_text(encoding="utf-8"))
    assert manifest["batch_id"] == result.batch_id and manifest["files"] == result.files
    with connected(settings) as warehouse:
        recorded = warehouse.fetch_frame("select sha256, rows_read, rows_loaded from "
                                         "raw.deliveries where source = 'survey_responses'")
    assert recorded.to_dict("records") == [
        {"sha256": entry["sha256"], "rows_read": 8, "rows_loaded": 8}]
    # The source's file changes afterwards: the landed copy does not.
    (settings.sources_dir / "surveys.csv").write_text("changed")
    assert Path(entry["path"]).read_bytes() == original


def _vendor_settings(tmp_path, settings, connector):
    return settings_for(tmp_path / "vendor", settings.sources_dir,
                        **{"sources.connectors": {"survey_responses": connector}})


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_csv_in_each_encoding_loads_the_same_rows(tmp_path, settings, encoding):
    _load(settings, "survey_responses")
    text = (settings.sources_dir / "surveys.csv").read_text(encoding="utf-8")
    drop = tmp_path / f"surveys-{encoding}.csv"
    drop.write_bytes(text.encode(encoding))
    other = _vendor_settings(tmp_path, settings, {"location": str(drop)})
    result = _load(other, "survey_responses")
    assert result.files[0]["encoding"] == "auto"
    assert _contract_rows(other, "survey_responses") == _contract_rows(
        settings, "survey_responses")
    assert any(r["comment"] == "很好" for r in _contract_rows(other, "survey_responses"))


def test_xlsx_and_json_lines_load_the_same_rows(tmp_path, settings):
    import openpyxl

    _load(settings, "survey_responses")
    expected = _contract_rows(settings, "survey_responses")
    with (settings.sources_dir / "surveys.csv").open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(records[0]))
    for record in records:
        # Excel holds numbers as numbers: scores arrive as ints, not text.
        sheet.append([int(v) if v.isdigit() else (v or None) for v in record.values()])
    book.save(tmp_path / "surveys.xlsx")
    (tmp_path / "surveys.jsonl").write_text("".join(
        json.dumps({k: (v or None) for k, v in r.items()}, ensure_ascii=False) + "\n"
        for r in records), encoding="utf-8")
    for name in ("surveys.xlsx", "surveys.jsonl"):
        other = _vendor_settings(tmp_path / name.replace(".", "_"), settings, {"location": str(tmp_path / name)})
        assert _load(other, "survey_responses").rows_loaded == 8
        assert _contract_rows(other, "survey_responses") == expected, name


def test_a_foreign_export_loads_by_configuration_alone(tmp_path, settings):
    """The worked example in docs/onboarding.md: a survey tool's GB18030 export with Chinese headers,
    its own words for values and day/month/year times without an offset."""
    _load(settings, "survey_responses")
    header = "回访编号,工单号,投诉单号,客户编号,发送时间,回复时间,满意度,推荐度,态度,速度,专业,备注,更新时间"
    rows = ["S1,T1,,C1,16/11/2026 14:00,16/11/2026 15:00,非常满意,10,5,5,5,很好,16/11/2026 15:00",
            "S2,T2,,C2,17/11/2026 11:00,17/11/2026 12:00,不满意,3,2,2,2,call me,17/11/2026 12:00",
            "S9,T1,,C1,16/11/2026 14:00,16/11/2026 15:00,还行吧,7,4,4,4,,16/11/2026 15:00"]
    drop = tmp_path / "问卷导出.csv"
    drop.write_bytes(("\n".join([header, *rows]) + "\n").encode("gb18030"))
    mapping = yaml.safe_load(FOREIGN_EXPORT_MAPPING)
    other = _vendor_settings(tmp_path, settings, {"location": str(drop), "mapping": mapping})
    result = _load(other, "survey_responses")
    assert (result.rows_loaded, result.rows_quarantined) == (2, 1)
    loaded = _contract_rows(other, "survey_responses")
    ours = {r["response_id"]: r for r in _contract_rows(settings, "survey_responses")}
    assert loaded[0] | {"comment": None} == ours["S1"] | {"comment": None}
    assert loaded[1]["satisfaction"] == 2 and loaded[1]["sent_at"] == ours["S2"]["sent_at"]
    (bad,) = _quarantine(other)
    assert (bad["source_row"], bad["field"], bad["value"]) == (4, "satisfaction", "还行吧")


FOREIGN_EXPORT_MAPPING = """
columns: {回访编号: response_id, 工单号: ticket_id, 投诉单号: complaint_id,
          客户编号: customer_id, 发送时间: sent_at, 回复时间: answered_at,
          满意度: satisfaction, 推荐度: nps_score, 态度: attitude_score,
          速度: speed_score, 专业: professionalism_score, 备注: comment,
          更新时间: updated_at}
values:
  satisfaction: {非常满意: "5", 满意: "4", 一般: "3", 不满意: "2", 非常不满意: "1"}
timestamp_formats: {"*": ["%d/%m/%Y %H:%M"]}
timezone: Asia/Shanghai
"""


def test_deliveries_are_taken_once(tmp_path, settings):
    drops = tmp_path / "drops"
    drops.mkdir()
    text = (settings.sources_dir / "surveys.csv").read_text(encoding="utf-8").splitlines()
    header, rows = text[0], text[1:]
    (drops / "surveys-1.csv").write_text("\n".join([header, *rows[:4]]) + "\n")
    other = _vendor_settings(tmp_path, settings, {"location": str(drops / "*.csv"),
                                                  "mode": "deliveries"})
    first = _load(other, "survey_responses", day=20)
    assert first.rows_loaded == 4
    # The same bytes again under another name, and a new file: only the new one loads.
    (drops / "surveys-1-copy.csv").write_bytes((drops / "surveys-1.csv").read_bytes())
    (drops / "surveys-2.csv").write_text("\n".join([header, *rows[4:6]]) + "\n")
    second = _load(other, "survey_responses", day=21)
    assert second.rows_loaded == 2 and "same content as" in second.skipped[0]
    # A corrected file under an old name is a new delivery.
    (drops / "surveys-2.csv").write_text("\n".join([header, *rows[4:8]]) + "\n")
    third = _load(other, "survey_responses", day=22)
    assert third.rows_loaded == 4
    digest = _table_digest(other, "survey_responses")
    assert _load(other, "survey_responses", day=22).rows_loaded == 4   # a re-run
    assert _table_digest(other, "survey_responses") == digest
    assert digest[0] == 4 + 2 + 4
    # The drop folder is cleaned up: a re-run takes its files from the landing zone.
    for taken in drops.iterdir():
        taken.unlink()
    assert _load(other, "survey_responses", day=21).rows_loaded == 2
    assert _table_digest(other, "survey_responses") == digest


def test_a_run_killed_mid_load_then_rerun_equals_one_run(tmp_path, settings, monkeypatch):
    from servicepulse.sources import readers

    clean = settings_for(tmp_path / "clean", settings.sources_dir)
    _load(clean, "crm_tickets", day=17)
    _load(clean, "crm_tickets", day=18)
    _load(settings, "crm_tickets", day=17)
    real = readers._csv

    def dies_after_the_first_batch(path, encoding, batch_rows):
        reader = real(path, encoding, 2)

        def batches():
            yield next(reader.batches)
            raise KeyboardInterrupt("killed")
        return readers.DeliveryReader(reader.columns, batches())
    monkeypatch.setattr(readers, "_csv", dies_after_the_first_batch)
    with pytest.raises(KeyboardInterrupt):
        _load(settings, "crm_tickets", day=18)
    monkeypatch.undo()
    _load(settings, "crm_tickets", day=18)
    assert _table_digest(settings, "crm_tickets") == _table_digest(clean, "crm_tickets")


def test_quarantine_and_reruns_on_a_postgresql_warehouse(tmp_path, postgres_prefix):
    """The loader's other path: checks in an in-memory DuckDB, rows COPYed to PostgreSQL."""
    sources = known_answers.write(tmp_path / "sources")
    path = sources / "crm_tickets.csv"
    path.write_text(path.read_text().replace(",installation,", ",repair,"))
    settings = settings_for(tmp_path, sources, **{
        "warehouse.kind": "postgres", "warehouse.schema_prefix": postgres_prefix})
    raw = settings.warehouse.schema("raw")
    counts, results = [], []
    for _ in range(2):
        results.append(_load(settings, "crm_tickets"))
        with connected(settings) as warehouse:
            counts.append(warehouse.fetch_frame(
                f'select (select count(*) from "{raw}".crm_tickets) as loaded, '
                f'(select count(*) from "{raw}".quarantined_rows) as quarantined, '
                f"(select string_agg(value || ' ' || reason, '') from \"{raw}\".quarantined_rows)"
                " as why").to_dict("records")[0])
    assert (results[0].rows_loaded, results[0].rows_quarantined) == (11, 1)   # backfill
    assert counts[0] == counts[1] == {"loaded": 11, "quarantined": 1, "why": (
        "repair not one of tech_support, installation, after_sales, consultation, delivery")}


def test_landed_deliveries_expire_after_the_retention(tmp_path, settings):
    """Counted from the interval being loaded, not the clock: a delivery last used more
    than landing_retention_days before it is deleted, a recent one stays."""
    short = settings_for(tmp_path / "short", settings.sources_dir,
                         **{"sources.landing_retention_days": 3})
    first = _load(short, "audits", day=10)
    old_copy, old_manifest = Path(first.files[0]["path"]), Path(first.manifest)
    (short.sources_dir / "audits.csv").write_text(
        (short.sources_dir / "audits.csv").read_text() + "\n")   # new bytes: a new copy
    _load(short, "audits", day=12)
    assert old_copy.exists() and old_manifest.exists()           # 2 days: within 3
    latest = _load(short, "audits", day=14)
    assert not old_copy.exists() and not old_manifest.exists()   # 4 days: expired
    assert Path(latest.files[0]["path"]).exists() and Path(latest.manifest).exists()


def test_constants_defaults_patterns_and_one_column_into_several(tmp_path):
    """A hotline's export: one channel (a constant), priority only for urgent calls (a
    default for the rest), statuses in its own words (a pattern), one closing time that
    is both resolution and closing, no version column (a fallback)."""
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "hotline.csv").write_text(
        "Call,Opened,Done,Team,Urgent,State\n"
        "H1,2026-11-16 09:00,2026-11-16 10:00,d_a,urgent,Closed - fixed\n"
        "H2,2026-11-16 11:00,,d_b,,In progress (waiting)\n"
        "H3,2026-11-16 12:00,,d_b,,Gone fishing\n", encoding="utf-8")
    settings = settings_for(tmp_path, sources, **{"sources.connectors": {"crm_tickets": {
        "location": "hotline.csv",
        "mapping": {
            "timezone": "Asia/Shanghai",
            "timestamp_formats": {"*": ["%Y-%m-%d %H:%M"]},
            "columns": {"Call": "ticket_id", "Opened": "created_at",
                        "Done": ["resolved_at", "closed_at"], "Team": "department",
                        "Urgent": "priority", "State": "status"},
            "constants": {"channel": "phone"},
            "defaults": {"priority": "general"},
            "fallbacks": {"updated_at": ["closed_at", "created_at"]},
            "value_patterns": {"status": {"Closed.*": "closed", "In progress.*": "open"}},
            "absent": ["customer_id", "service_type", "agent_id", "first_response_at",
                       "contacts_to_resolve", "handle_seconds", "promised_at",
                       "delivered_at"]}}}})
    result = _load(settings, "crm_tickets", day=23)
    assert (result.rows_loaded, result.rows_quarantined) == (2, 1)
    with connected(settings) as warehouse:
        rows = warehouse.fetch_frame(
            "select ticket_id, channel, priority, status, resolved_at, closed_at, updated_at, "
            "created_at, _original from raw.crm_tickets order by ticket_id")
        (bad,) = _quarantine(settings)
    h1, h2 = rows.to_dict("records")
    assert (h1["channel"], h1["priority"], h1["status"]) == ("phone", "urgent", "closed")
    assert (h2["channel"], h2["priority"], h2["status"]) == ("phone", "general", "open")
    assert h1["resolved_at"] == h1["closed_at"] == h1["updated_at"]       # 10:00 local
    assert h1["updated_at"].isoformat() == "2026-11-16T02:00:00+00:00"
    assert h2["updated_at"] == h2["created_at"] and h2["resolved_at"] is pd.NaT
    assert json.loads(h1["_original"])["State"] == "Closed - fixed"
    # A status no rule knows is quarantined with its row and value; the rest load.
    assert (bad["source_row"], bad["field"], bad["value"]) == (4, "status", "Gone fishing")
    assert bad["reason"] == "not one of open, resolved, closed"
