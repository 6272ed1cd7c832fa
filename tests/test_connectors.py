"""Each connector against a real server: the CRM in PostgreSQL and in SQLite, the
complaint API over HTTP with injected 429 and 500 replies. Known answers: the
hand-made data set of known_answers, whose latest versions a CRM would hold."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from servicepulse.demo.systems import ComplaintApi, fill_crm
from servicepulse.load import load_source
from servicepulse.sources.contracts import load_contracts
from servicepulse.sources.http import ApiError
from servicepulse.warehouse import connected
from tests import known_answers
from tests.conftest import PG, settings_for

SH = ZoneInfo("Asia/Shanghai")
PG_URL = f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{PG['dbname']}"


def _load(settings, source, day):
    with connected(settings) as warehouse:
        return load_source(settings, warehouse, source, datetime(2026, 11, day, tzinfo=SH),
                           datetime(2026, 11, day + 1, tzinfo=SH))


def _latest(settings, source):
    """The latest version of each row (what staging keeps), contract columns only."""
    contract = load_contracts()[source]
    columns = ", ".join(contract.column_names)
    with connected(settings) as warehouse:
        frame = warehouse.fetch_frame(
            f"select {columns} from (select *, row_number() over (partition by {contract.key} "
            f"order by {contract.version_column} desc) as n from raw.{source}) where n = 1 "
            "order by all")
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


@pytest.fixture
def sources(tmp_path):
    return known_answers.write(tmp_path / "sources")


@pytest.fixture
def from_csv(tmp_path, sources):
    settings = settings_for(tmp_path / "csv", sources)
    for source in ("crm_customers", "crm_tickets", "complaints"):
        _load(settings, source, 23)
    return settings


@pytest.fixture
def crm_schema(postgres_prefix):
    return f"{postgres_prefix}crm"


def test_crm_from_postgresql_incrementally(tmp_path, sources, from_csv, crm_schema,
                                           monkeypatch):
    assert fill_crm(PG_URL, sources, schema=crm_schema) == {"customers": 2, "tickets": 10}
    monkeypatch.setenv("SERVICEPULSE_SOURCE_CRM_TICKETS_URL", PG_URL)
    settings = settings_for(tmp_path / "pg", sources, **{"sources.connectors": {
        "crm_tickets": {"kind": "sql", "table": "tickets", "db_schema": crm_schema}}})
    first = _load(settings, "crm_tickets", 18)       # backfill: everything before 19 Nov
    assert first.backfill and first.rows_loaded == 9  # T6 (23 Nov) is not due yet
    assert first.files[0]["format"] == "csv" and "tickets" in first.files[0]["origin"]
    # From the day of the newest change loaded (18 Nov 10:00) − 1 h: T2, T3, T4 again, T6.
    assert _load(settings, "crm_tickets", 23).rows_loaded == 3 + 1
    assert _latest(settings, "crm_tickets") == _latest(from_csv, "crm_tickets")

    # The CRM changes T4 the next day: the next night's pull brings its latest version.
    engine = sa.create_engine(PG_URL)
    with engine.begin() as connection:
        connection.execute(sa.text(
            f"update {crm_schema}.tickets set status = 'resolved', "
            "resolved_at = '2026-11-24 09:00+08', updated_at = '2026-11-24 09:00+08' "
            "where ticket_id = 'T4'"))
    engine.dispose()
    again = _load(settings, "crm_tickets", 24)
    assert again.rows_loaded == 2 and again.partitions == ("2026-11-23", "2026-11-25")
    t4 = [r for r in _latest(settings, "crm_tickets") if r["ticket_id"] == "T4"]
    assert t4[0]["status"] == "resolved"
    digest = _latest(settings, "crm_tickets")
    assert _load(settings, "crm_tickets", 24).rows_loaded == 2   # a re-run: the same
    assert _latest(settings, "crm_tickets") == digest


def test_crm_from_sqlite_with_naive_utc_timestamps(tmp_path, sources, from_csv):
    database = tmp_path / "crm.sqlite"
    fill_crm(f"sqlite:///{database}", sources)
    settings = settings_for(tmp_path / "lite", sources, **{"sources.connectors": {
        name: {"kind": "sql", "url": f"sqlite:///{database}", "table": table,
               "mapping": {"timezone": "UTC"}}
        for name, table in (("crm_customers", "customers"), ("crm_tickets", "tickets"))}})
    for source in ("crm_customers", "crm_tickets"):
        _load(settings, source, 23)
        assert _latest(settings, source) == _latest(from_csv, source), source


def test_a_database_url_with_a_password_is_refused_in_the_settings(tmp_path, sources):
    from servicepulse.settings import ConfigError

    with pytest.raises(ConfigError, match="holds a password"):
        settings_for(tmp_path, sources, **{"sources.connectors": {"crm_tickets": {
            "kind": "sql", "table": "tickets", "url": "postgresql://crm:hunter2@db/crm"}}})


def _api_settings(tmp_path, sources, api, **connector):
    return settings_for(tmp_path / "api", sources, **{"sources.connectors": {"complaints": {
        "kind": "http", "url": api.url, "page_size": 2, "backoff_seconds": 0.01,
        "token_env": "COMPLAINT_API_TOKEN", **connector}}})


def test_complaints_from_the_api_through_429_and_500(tmp_path, sources, from_csv,
                                                     monkeypatch):
    waits = []
    monkeypatch.setattr("servicepulse.sources.http.time.sleep", waits.append)
    monkeypatch.setenv("COMPLAINT_API_TOKEN", "t0ken")
    with ComplaintApi(sources / "complaints.csv", "t0ken", faults={429: 2, 500: 3},
                      retry_after=7) as api:
        settings = _api_settings(tmp_path, sources, api)
        result = _load(settings, "complaints", 23)
        statuses = [status for status, _ in api.requests]
    # 5 complaints, 2 a page: 3 pages, each fetched after the injected faults.
    assert result.rows_loaded == 5 and len(result.files) == 3
    assert statuses.count(200) == 3 and {429, 500} <= set(statuses)
    assert 7 in waits                    # 429 waited for its Retry-After
    assert _latest(settings, "complaints") == _latest(from_csv, "complaints")
    manifest_pages = [f["origin"] for f in result.files]
    assert all("updated_before=" in origin for origin in manifest_pages)


def test_the_api_is_read_incrementally(tmp_path, sources, monkeypatch):
    monkeypatch.setenv("COMPLAINT_API_TOKEN", "t0ken")
    with ComplaintApi(sources / "complaints.csv", "t0ken") as api:
        settings = _api_settings(tmp_path, sources, api)
        _load(settings, "complaints", 21)
        api.requests.clear()
        second = _load(settings, "complaints", 22)
        paths = [path for _, path in api.requests]
    # From the day of (newest loaded change 18 Nov 10:00 − 1 h overlap) to 23 Nov.
    assert all("updated_since=2026-11-17T16%3A00%3A00%2B00%3A00" in p for p in paths)
    assert second.rows_loaded == 2            # P1 (18 Nov) again, and P2 (22 Nov)


def test_a_wrong_token_stops_the_source_with_the_servers_answer(tmp_path, sources,
                                                               monkeypatch):
    monkeypatch.setenv("COMPLAINT_API_TOKEN", "wrong")
    with ComplaintApi(sources / "complaints.csv", "t0ken") as api:
        settings = _api_settings(tmp_path, sources, api)
        with pytest.raises(ApiError, match=r"HTTP 401.*check the bearer token"):
            _load(settings, "complaints", 23)


def test_an_api_that_keeps_failing_gives_up_after_max_attempts(tmp_path, sources,
                                                              monkeypatch):
    monkeypatch.setattr("servicepulse.sources.http.time.sleep", lambda seconds: None)
    monkeypatch.setenv("COMPLAINT_API_TOKEN", "t0ken")
    with ComplaintApi(sources / "complaints.csv", "t0ken", faults={500: 1}) as api:
        settings = _api_settings(tmp_path, sources, api, max_attempts=3)
        with pytest.raises(ApiError, match="gave up after 3 attempts: HTTP 500"):
            _load(settings, "complaints", 23)
        assert len(api.requests) == 3
    with connected(settings) as warehouse:
        assert not warehouse.table_exists("raw", "complaints")


def test_credentials_come_from_airflow_connections(tmp_path, sources, from_csv, crm_schema,
                                                   monkeypatch):
    """A deployment keeps the CRM's URL and the API's token in Airflow connections (here
    given as AIRFLOW_CONN_<ID>, as a secrets backend or the metadata database would)."""
    fill_crm(PG_URL, sources, schema=crm_schema)
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DATABASE",
                       f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{PG['dbname']}")
    monkeypatch.setenv("AIRFLOW_CONN_COMPLAINT_API", "http://:t0ken@127.0.0.1")
    with ComplaintApi(sources / "complaints.csv", "t0ken") as api:
        settings = settings_for(tmp_path / "conn", sources, **{"sources.connectors": {
            "crm_tickets": {"kind": "sql", "connection_id": "crm_database", "table": "tickets",
                            "db_schema": crm_schema},
            "complaints": {"kind": "http", "url": api.url, "connection_id": "complaint_api"}}})
        for source in ("crm_tickets", "complaints"):
            _load(settings, source, 23)
            assert _latest(settings, source) == _latest(from_csv, source), source


def test_page_numbers_timeouts_and_refused_connections(tmp_path, sources, from_csv,
                                                       monkeypatch):
    monkeypatch.setattr("servicepulse.sources.http.time.sleep", lambda seconds: None)
    monkeypatch.setenv("COMPLAINT_API_TOKEN", "t0ken")
    with ComplaintApi(sources / "complaints.csv", "t0ken", stall_every=2,
                      stall_seconds=1.5) as api:
        settings = _api_settings(tmp_path, sources, api, pagination="page",
                                 timeout_seconds=0.5)
        result = _load(settings, "complaints", 23)
        pages = sorted({path.split("page=")[1] for _, path in api.requests})
    # 5 complaints, 2 a page: pages 1-3 (the last is short), each stalled request retried.
    assert pages == ["1", "2", "3"] and len(result.files) == 3
    assert _latest(settings, "complaints") == _latest(from_csv, "complaints")

    closed = ComplaintApi(sources / "complaints.csv", "t0ken")
    closed.close()                       # nothing listens on its port any more
    settings = _api_settings(tmp_path / "closed", sources, closed, max_attempts=2)
    with pytest.raises(ApiError, match="gave up after 2 attempts: ConnectionError"):
        _load(settings, "complaints", 23)


def test_file_drops_at_an_fsspec_url(tmp_path, sources, from_csv):
    import fsspec

    with fsspec.open("memory://drops/complaints-2026-11-23.csv", "wb") as remote:
        remote.write((sources / "complaints.csv").read_bytes())
    settings = settings_for(tmp_path / "fsspec", sources, **{"sources.connectors": {
        "complaints": {"location": "memory://drops/complaints-*.csv"}}})
    result = _load(settings, "complaints", 23)
    origin = result.files[0]["origin"]
    assert origin.startswith("memory://") and origin.endswith("/drops/complaints-2026-11-23.csv")
    assert _latest(settings, "complaints") == _latest(from_csv, "complaints")
