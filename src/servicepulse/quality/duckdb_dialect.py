"""A DuckDB SQLAlchemy dialect whose cursors buffer their result at execute time.

Why: Great Expectations' SQL engine executes a metric query inside
``with engine.connect()`` and fetches the rows after the block has returned the
connection to the pool. Drivers with client-side results (psycopg2) survive that;
duckdb_engine's cursors all share the one DuckDB connection and read its pending
result lazily, so the pool's rollback-on-return discards the rows and GX reports
"no metric rows". Buffering the (small, aggregated) result when the statement runs
gives DuckDB the client-side semantics GX relies on; the query itself still runs
inside DuckDB, so nothing is pulled into pandas.

Use it as ``duckdb+buffered:///path/to/warehouse.duckdb[?search_path=schema]``.
"""

from __future__ import annotations

import weakref
from typing import Any

import duckdb
from duckdb_engine import ConnectionWrapper, CursorWrapper, Dialect
from sqlalchemy.dialects import registry


class BufferedCursor(CursorWrapper):
    def __init__(self, connection, wrapper) -> None:
        super().__init__(connection, wrapper)
        self._rows: list[tuple] | None = None
        self._description: Any = None
        self._position = 0

    def execute(self, statement, parameters=None, context=None):
        super().execute(statement, parameters, context)
        inner = self._CursorWrapper__c  # the DuckDB connection this cursor runs on
        self._description = inner.description
        self._rows = inner.fetchall() if self._description is not None else None
        self._position = 0

    @property
    def description(self):
        return self._description

    @property
    def rowcount(self) -> int:
        return len(self._rows) if self._rows is not None else -1

    def fetchone(self):
        if not self._rows or self._position >= len(self._rows):
            return None
        row = self._rows[self._position]
        self._position += 1
        return row

    def fetchmany(self, size: int | None = None):
        size = size or 1
        rows = (self._rows or [])[self._position:self._position + size]
        self._position += len(rows)
        return rows

    def fetchall(self):
        rows = (self._rows or [])[self._position:]
        self._position += len(rows)
        return rows


class BufferedConnection(ConnectionWrapper):
    def cursor(self) -> BufferedCursor:
        return BufferedCursor(self._ConnectionWrapper__c, self)


# GX keeps engines and connections alive after a run, beyond engine.dispose(); a
# DuckDB file stays locked while any connection to it lives, and the next step (dbt,
# in another process) must open it. So the connections this dialect opens are
# tracked and closed explicitly when the run is over.
_open_connections: weakref.WeakSet[BufferedConnection] = weakref.WeakSet()


def close_all() -> int:
    closed = 0
    for connection in list(_open_connections):
        if not connection.closed:
            connection.close()
            closed += 1
    return closed


class BufferedDuckDBDialect(Dialect):
    """duckdb_engine's dialect, with buffered cursors. Its name stays ``duckdb``."""

    supports_statement_cache = True  # SQL compilation is duckdb_engine's, unchanged

    def connect(self, *cargs: Any, **cparams: Any):
        # Only the URL's own settings: duckdb_engine adds a user agent, and DuckDB
        # refuses a second connection to a file open in this process with another
        # configuration (the pipeline's own connection has none).
        config = dict(cparams.pop("config", {}))
        config.update(cparams.pop("url_config", {}))
        # ?search_path=raw: a session setting, so unqualified table names (GX table
        # assets reflect them unqualified) resolve in that schema.
        search_path = config.pop("search_path", None)
        raw = duckdb.connect(*cargs, config=config, **cparams)
        if search_path:
            raw.execute("SET search_path = ?", [search_path])
        connection = BufferedConnection(raw)
        _open_connections.add(connection)
        return connection


def register() -> None:
    registry.register("duckdb.buffered", __name__, "BufferedDuckDBDialect")
