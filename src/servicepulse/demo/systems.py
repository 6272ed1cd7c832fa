"""Stand-ins for a customer's systems, filled from the generated data set, so the demo
and the tests pull from a real database and a real HTTP API instead of our own CSVs.

- ``fill_crm``: the CRM database (customers and tickets tables, one row per id as a
  CRM keeps them: the latest version) in SQLite (demo) or PostgreSQL (tests, bench).
- ``ComplaintApi``: the complaint system's JSON API on 127.0.0.1: bearer token,
  ``updated_since`` / ``updated_before``, cursor pagination, and injected 429 and 500
  replies so the client's retries are exercised for real.
"""

from __future__ import annotations

import base64
import csv
import errno
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, urlparse

from servicepulse.settings import HttpConnector, Settings
from servicepulse.sources.contracts import load_contracts

CRM_TABLES = {"crm_customers": "customers", "crm_tickets": "tickets"}


def fill_crm(url: str, sources_dir: Path, schema: str | None = None) -> dict[str, int]:
    """(Re)create the CRM tables from the generated CSV files; returns rows per table."""
    import sqlalchemy as sa

    contracts = load_contracts()
    engine = sa.create_engine(url)
    counts = {}
    try:
        with engine.begin() as connection:
            postgres = connection.dialect.name == "postgresql"
            if schema:
                connection.execute(sa.text(f'create schema if not exists "{schema}"'))
            for source, name in CRM_TABLES.items():
                contract = contracts[source]
                types = {"text": sa.Text, "integer": sa.BigInteger, "number": sa.Float,
                         "timestamp": lambda: sa.DateTime(timezone=postgres)}
                table = sa.Table(name, sa.MetaData(), *[
                    sa.Column(c.name, types[c.type](), primary_key=c.name == contract.key)
                    for c in contract.columns], schema=schema)
                table.drop(connection, checkfirst=True)
                table.create(connection)
                path = sources_dir / f"{source}.csv"
                if postgres:
                    counts[name] = _copy_latest(connection, table, contract, path)
                else:
                    counts[name] = _insert_latest(connection, table, contract, path)
    finally:
        engine.dispose()
    return counts


def _copy_latest(connection, table, contract, path: Path) -> int:
    raw = connection.connection.dbapi_connection
    target = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
    columns = ", ".join(f'"{c}"' for c in contract.column_names)
    with raw.cursor() as cursor, path.open("rb") as rows:
        cursor.execute("drop table if exists incoming")
        cursor.execute(f"create temp table incoming (like {target})")
        cursor.copy_expert(f"copy incoming ({columns}) from stdin with (format csv, "
                           "header true)", rows)
        cursor.execute(f"insert into {target} select distinct on ({contract.key}) * from "
                       f"incoming order by {contract.key}, {contract.version_column} desc")
        count = cursor.rowcount
        cursor.execute("drop table incoming")
        return count


def _insert_latest(connection, table, contract, path: Path, batch: int = 20_000) -> int:
    from datetime import UTC

    timestamps = {c.name for c in contract.columns if c.type == "timestamp"}
    numbers = {c.name: c.type for c in contract.columns if c.type in ("integer", "number")}
    latest = [record for _, record in
              latest_versions(path, contract.key, contract.version_column)]
    rows = []
    for record in latest:
        row = {}
        for name, value in record.items():
            if value is None:
                row[name] = None
            elif name in timestamps:   # the CRM keeps naive UTC, as many do
                row[name] = datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)
            elif name in numbers:
                row[name] = int(value) if numbers[name] == "integer" else float(value)
            else:
                row[name] = value
        rows.append(row)
    for start in range(0, len(rows), batch):
        connection.execute(table.insert(), rows[start:start + batch])
    return len(rows)


class ComplaintApi:
    """``with ComplaintApi(csv_path, token) as api: api.url`` serves the complaints.

    ``faults``: every Nth request answers with that status instead, e.g.
    ``{429: 3, 500: 5}`` (429 carries ``Retry-After: retry_after``); every
    ``stall_every``-th request waits ``stall_seconds`` before answering (a timeout).
    Pages come by ``cursor`` or, given ``page`` (1-based), by page number."""

    def __init__(self, complaints_csv: Path, token: str, port: int = 0,
                 faults: dict[int, int] | None = None, retry_after: int = 1,
                 stall_every: int = 0, stall_seconds: float = 0) -> None:
        self.records = latest_versions(complaints_csv, "complaint_id")
        self.token, self.faults, self.retry_after = token, faults or {}, retry_after
        self.stall_every, self.stall_seconds = stall_every, stall_seconds
        self.requests: list[tuple[int, str]] = []   # (status, path) of every request
        self._lock = threading.Lock()
        self._serving = False
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api/v1/complaints"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._serving = True
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._serving:   # shutdown() waits for serve_forever, which may never have run
            self._server.shutdown()
            self._serving = False
        self._server.server_close()

    def serve_forever(self) -> None:
        self._serving = True
        self._server.serve_forever()

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the test or the demo reports
                pass

            def do_GET(self):
                status, body, headers = api._answer(self.path, self.headers)
                with api._lock:
                    api.requests.append((status, self.path))
                payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
        return Handler

    def _answer(self, path: str, headers) -> tuple[int, dict, dict]:
        with self._lock:
            number = len(self.requests) + 1
        if self.stall_every and number % self.stall_every == 0:
            time.sleep(self.stall_seconds)
        for status, every in sorted(self.faults.items()):
            if every and number % every == 0:
                extra = {"Retry-After": str(self.retry_after)} if status == 429 else {}
                return status, {"error": "injected fault"}, extra
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"error": "missing or wrong bearer token"}, {}
        url = urlparse(path)
        if url.path != "/api/v1/complaints":
            return 404, {"error": "not found"}, {}
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            since = _instant(query.get("updated_since"))
            before = _instant(query.get("updated_before"))
            limit = min(int(query.get("limit", 100)), 1000)
            if query.get("page"):
                offset = (int(query["page"]) - 1) * limit
            else:
                offset = int(base64.urlsafe_b64decode(query["cursor"]).decode()) \
                    if query.get("cursor") else 0
        except (ValueError, KeyError) as exc:
            return 400, {"error": f"bad query: {exc}"}, {}
        selected = [r for moment, r in self.records
                    if (since is None or moment >= since) and (before is None or moment < before)]
        page = selected[offset:offset + limit]
        following = offset + limit
        cursor = base64.urlsafe_b64encode(str(following).encode()).decode() \
            if following < len(selected) else None
        return 200, {"data": page, "next_cursor": cursor}, {}


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment


def latest_versions(path: Path, key: str, version_column: str = "updated_at"
                    ) -> list[tuple[datetime, dict[str, str | None]]]:
    """Each key's latest version in a generated CSV (blanks as None), oldest change
    first: what a system that updates rows in place holds. Versions are compared as
    instants, since a file may mix UTC offsets."""
    latest: dict[str, tuple[datetime, dict]] = {}
    with path.open(encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            moment = datetime.fromisoformat(record[version_column])
            if record[key] not in latest or moment >= latest[record[key]][0]:
                latest[record[key]] = (
                    moment, {k: (v if v != "" else None) for k, v in record.items()})
    return sorted(latest.values(), key=lambda item: (item[0], item[1][key]))


def fill_demo_crm(settings: Settings) -> Path | None:
    """Fill the demo's SQLite CRM (sources.demo_systems.crm_database) from the files."""
    config = settings.sources.demo_systems
    if config is None or config.crm_database is None:
        return None
    database = settings.path(config.crm_database)
    database.parent.mkdir(parents=True, exist_ok=True)
    fill_crm(f"sqlite:///{database}", settings.sources_dir)
    return database


@contextmanager
def demo_systems_running(settings: Settings) -> Iterator[ComplaintApi | None]:
    """While the demo's DAG runs: the complaint API on sources.demo_systems'
    port, with a fresh bearer token in the environment the Airflow tasks inherit."""
    config = settings.sources.demo_systems
    if config is None or config.complaint_api_port is None:
        yield None
        return
    connector = settings.sources.connectors.get("complaints")
    variable = (connector.token_env if isinstance(connector, HttpConnector)
                and connector.token_env else "SERVICEPULSE_SOURCE_COMPLAINTS_TOKEN")
    token = os.environ.setdefault(variable, secrets.token_urlsafe(16))
    def serve(port: int) -> ComplaintApi:
        return ComplaintApi(settings.sources_dir / "complaints.csv", token, port=port,
                            faults={429: 2, 500: 5}, retry_after=1)

    try:
        api = serve(config.complaint_api_port)
        moved = None
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # Another program has the configured port: serve on a free one and point the
        # complaints connector there for this run (the Airflow tasks read the
        # environment's settings overrides).
        api = serve(0)
        moved = "SERVICEPULSE__SOURCES__CONNECTORS__COMPLAINTS__URL"
        print(f"port {config.complaint_api_port} is in use: the demo complaint API is served "
              f"at {api.url} for this run", file=sys.stderr)
    with api:
        if moved:
            before = os.environ.get(moved)
            os.environ[moved] = api.url
        try:
            yield api
        finally:
            if moved:
                if before is None:
                    os.environ.pop(moved, None)
                else:
                    os.environ[moved] = before
