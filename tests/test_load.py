import hashlib
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from servicepulse.load import SourceError, load_source
from servicepulse.warehouse import connected
from tests import known_answers
from tests.conftest import settings_for

SH = ZoneInfo("Asia/Shanghai")


def _table_digest(settings, table):
    with connected(settings) as warehouse:
        frame = warehouse.fetch_frame(
            f'select * exclude (_loaded_at) from raw."{table}" order by _source_row')
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
    # 18 Nov (local) holds T2's correction and T3 and T4: 3 rows replaced each time.
    assert result.rows_loaded == 3
    assert digests[0] == digests[1] == digests[2]
    # T0 T1 T2 T5 T10 T11 T12 T12' (backfill) + T2' T3 T4 (18 Nov); not T6
    assert digests[0][0] == 11


def test_first_load_backfills_everything_before_the_interval_end(settings):
    with connected(settings) as warehouse:
        result = load_source(settings, warehouse, "survey_responses",
                             datetime(2026, 11, 23, tzinfo=SH), datetime(2026, 11, 24, tzinfo=SH))
    assert result.backfill and result.rows_loaded == result.rows_in_delivery == 8


def _expect_error(settings, source, line, column, words):
    with pytest.raises(SourceError) as error, connected(settings) as warehouse:
        load_source(settings, warehouse, source, datetime(2026, 11, 23, tzinfo=SH),
                    datetime(2026, 11, 24, tzinfo=SH))
    message = str(error.value)
    assert error.value.line == line and error.value.column == column
    assert str(error.value.path) in message and words in message
    with connected(settings) as warehouse:
        assert not warehouse.table_exists("raw", source)  # nothing partial left behind
    return message


def test_missing_file_names_the_file(settings):
    (settings.sources_dir / "complaints.csv").unlink()
    with (pytest.raises(SourceError, match=r"complaints\.csv: file does not exist"),
          connected(settings) as warehouse):
        load_source(settings, warehouse, "complaints", datetime(2026, 11, 23, tzinfo=SH),
                    datetime(2026, 11, 24, tzinfo=SH))


def test_missing_required_column_names_the_column(settings):
    path = settings.sources_dir / "crm_tickets.csv"
    path.write_text(path.read_text().replace(",priority,", ",prio,", 1))
    _expect_error(settings, "crm_tickets", 1, "priority", "required column missing")


def test_unparseable_timestamp_names_file_line_and_column(settings):
    path = settings.sources_dir / "crm_tickets.csv"
    lines = path.read_text().splitlines()
    assert lines[5].startswith("T3,")
    lines[5] = lines[5].replace("2026-11-17T14:30:00+08:00", "17/11/2026 14:30")
    path.write_text("\n".join(lines) + "\n")
    message = _expect_error(settings, "crm_tickets", 6, "first_response_at",
                            "not an ISO 8601 timestamp")
    assert "17/11/2026 14:30" in message


def test_value_outside_the_vocabulary(settings):
    path = settings.sources_dir / "complaints.csv"
    path.write_text(path.read_text().replace(",billing,", ",invoice,"))
    _expect_error(settings, "complaints", 3, "category", "not one of")


def test_a_failed_reload_keeps_the_previous_good_rows(settings):
    with connected(settings) as warehouse:
        load_source(settings, warehouse, "crm_tickets", datetime(2026, 11, 23, tzinfo=SH),
                    datetime(2026, 11, 24, tzinfo=SH))
    before = _table_digest(settings, "crm_tickets")
    path = settings.sources_dir / "crm_tickets.csv"
    path.write_text(path.read_text().replace("2026-11-18T08:00:00+08:00,,,", "yesterday,,,", 1))
    with pytest.raises(SourceError), connected(settings) as warehouse:
        load_source(settings, warehouse, "crm_tickets", datetime(2026, 11, 23, tzinfo=SH),
                    datetime(2026, 11, 24, tzinfo=SH))
    assert _table_digest(settings, "crm_tickets") == before
