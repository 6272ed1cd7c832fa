"""The warehouse: DuckDB (embedded default) or PostgreSQL (production), one interface.

Only what the Python side needs lives here: run SQL, read a frame, and replace a
slice of a table atomically. Everything analytical is dbt's job.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd

from servicepulse.errors import RetryableError, UserError
from servicepulse.redact import redact
from servicepulse.settings import Settings
from servicepulse.waiting import wait_while_held

T = TypeVar("T")


class Warehouse(Protocol):
    kind: str

    def execute(self, sql: str, params: tuple | list | None = None) -> None: ...

    def fetch_frame(self, sql: str, params: tuple | list | None = None) -> pd.DataFrame: ...

    def table_exists(self, schema: str, table: str) -> bool: ...

    def replace_slice(self, schema: str, table: str, ddl_columns: list[tuple[str, str]],
                      frame: pd.DataFrame, delete_where: str, params: list) -> None: ...

    # Loading: a DuckDB connection to type and check deliveries in (the warehouse's own
    # for DuckDB, an in-memory one for PostgreSQL), one transaction around the writes,
    # and inserts of a query's rows from that connection.
    def scratch(self) -> Any: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def ensure_table(self, schema: str, table: str,
                     ddl_columns: list[tuple[str, str]]) -> None: ...

    def insert_from_scratch(self, scratch: Any, schema: str, table: str, columns: list[str],
                            select_sql: str, incoming_batch: Any = None) -> int: ...

    def limit_memory(self, limit: str) -> None: ...

    # After a load: what lets the builds find a night's rows in a long history without
    # reading all of it (indexes on the columns they look rows up by, statistics).
    def prepare_for_lookups(self, schema: str, table: str, columns: list[str]) -> None: ...

    def close(self) -> None: ...


class DuckDBWarehouse:
    kind = "duckdb"

    def __init__(self, path: str, read_only: bool = False, turn: Any = None) -> None:
        import duckdb

        self._con = duckdb.connect(path, read_only=read_only)
        self._con.execute("SET TimeZone = 'UTC'")
        # The shared turn at the file (see dbt_turn), released with the connection.
        self._turn = turn

    def execute(self, sql, params=None):
        self._con.execute(sql, params or [])

    def fetch_frame(self, sql, params=None):
        return self._con.execute(sql, params or []).df()

    def table_exists(self, schema, table):
        return bool(self._con.execute(
            "select count(*) from information_schema.tables where table_schema = ? "
            "and table_name = ?", [schema, table]).fetchone()[0])

    def replace_slice(self, schema, table, ddl_columns, frame, delete_where, params):
        columns = ", ".join(f'"{name}"' for name, _ in ddl_columns)
        with self.transaction():
            self._con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            self._con.execute(_create_table_sql(schema, table, ddl_columns))
            self._con.execute(f'DELETE FROM "{schema}"."{table}" WHERE {delete_where}', params)
            self._con.register("incoming_slice", frame)
            self._con.execute(f'INSERT INTO "{schema}"."{table}" ({columns}) '
                              f'SELECT {columns} FROM incoming_slice')
            self._con.unregister("incoming_slice")

    def scratch(self):
        return self._con

    @contextmanager
    def transaction(self):
        self._con.execute("BEGIN TRANSACTION")
        try:
            yield
            self._con.execute("COMMIT")
        except BaseException:
            # After some failures (a full disk) DuckDB has already ended the transaction;
            # the rollback's own error must not hide the cause.
            with suppress(Exception):
                self._con.execute("ROLLBACK")
            raise

    def ensure_table(self, schema, table, ddl_columns):
        _ensure_table(self, schema, table, ddl_columns)

    def insert_from_scratch(self, scratch, schema, table, columns, select_sql,
                            incoming_batch=None):
        # ``incoming_batch`` (an Arrow table) is read by name by the query: a local.
        names = ", ".join(f'"{name}"' for name in columns)
        return self._con.execute(
            f'INSERT INTO "{schema}"."{table}" ({names}) {select_sql}').fetchone()[0]

    def limit_memory(self, limit):
        self._con.execute(f"SET memory_limit = '{limit}'")
        # Rows are found by their _source_row, not their order: inserts may run in parallel.
        self._con.execute("SET preserve_insertion_order = false")

    def prepare_for_lookups(self, schema, table, columns):
        # Nothing: DuckDB skips row groups by their min/max and keeps statistics as it
        # writes; an index would slow every load and serve few of the builds' scans.
        pass

    def close(self):
        try:
            self._con.close()
        finally:
            if self._turn is not None:
                self._turn.close()
                self._turn = None


class PostgresWarehouse:
    kind = "postgres"

    def __init__(self, dsn: str) -> None:
        import psycopg2

        self._con = psycopg2.connect(dsn)
        self._con.autocommit = True
        self._scratch = None

    def execute(self, sql, params=None):
        with self._con.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params or None)

    def fetch_frame(self, sql, params=None):
        with self._con.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params or None)
            names = [d[0] for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=names)

    def table_exists(self, schema, table):
        frame = self.fetch_frame("select count(*) as n from information_schema.tables "
                                 "where table_schema = ? and table_name = ?", [schema, table])
        return bool(frame["n"].iloc[0])

    def replace_slice(self, schema, table, ddl_columns, frame, delete_where, params):
        columns = ", ".join(f'"{name}"' for name, _ in ddl_columns)
        buffer = io.StringIO()
        frame = frame[[name for name, _ in ddl_columns]].copy()
        for name, sql_type in ddl_columns:
            if sql_type in ("BIGINT", "INTEGER"):
                # A nullable integer column arrives as float (NaN); COPY wants "2", not "2.0".
                frame[name] = frame[name].astype("Int64")
        frame.to_csv(
            buffer, index=False, header=False, quoting=csv.QUOTE_MINIMAL, na_rep="\\N",
            date_format="%Y-%m-%dT%H:%M:%S.%f%z")
        buffer.seek(0)
        with self.transaction(), self._con.cursor() as cur:
            cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            cur.execute(_create_table_sql(schema, table, ddl_columns))
            cur.execute(f'DELETE FROM "{schema}"."{table}" WHERE '
                        + delete_where.replace("?", "%s"), params)
            cur.copy_expert(f'COPY "{schema}"."{table}" ({columns}) FROM STDIN '
                            "WITH (FORMAT csv, NULL '\\N')", buffer)

    def scratch(self):
        if self._scratch is None:
            import duckdb

            self._scratch = duckdb.connect()
            self._scratch.execute("SET TimeZone = 'UTC'")
        return self._scratch

    @contextmanager
    def transaction(self):
        self._con.autocommit = False
        try:
            yield
            self._con.commit()
        except BaseException:
            with suppress(Exception):  # a dropped connection cannot roll back: keep the cause
                self._con.rollback()
            raise
        finally:
            self._con.autocommit = True

    def ensure_table(self, schema, table, ddl_columns):
        _ensure_table(self, schema, table, ddl_columns)

    def insert_from_scratch(self, scratch, schema, table, columns, select_sql,
                            incoming_batch=None):
        # ``incoming_batch`` (an Arrow table) is read by name by the query: a local.
        import tempfile

        names = ", ".join(f'"{name}"' for name in columns)
        with tempfile.NamedTemporaryFile(suffix=".csv") as staged:
            scratch.execute(f"COPY ({select_sql}) TO '{staged.name}' "
                            "(FORMAT csv, HEADER false, NULL '\\N')")
            with open(staged.name, "rb") as rows, self._con.cursor() as cur:
                cur.copy_expert(f'COPY "{schema}"."{table}" ({names}) FROM STDIN '
                                "WITH (FORMAT csv, NULL '\\N')", rows)
                return cur.rowcount

    def limit_memory(self, limit):
        self.scratch().execute(f"SET memory_limit = '{limit}'")

    def prepare_for_lookups(self, schema, table, columns):
        # A nightly build asks a raw table for the versions loaded since its last build
        # and for every version of the keys among them: without indexes each question
        # read the whole history. Created once (the first load pays), then kept up by
        # PostgreSQL. ANALYZE: a table just loaded has no statistics until autovacuum
        # gets to it, and the planner then guesses its size.
        for column in columns:
            index = f"{table}__{column}"[:63]
            self.execute(f'CREATE INDEX IF NOT EXISTS "{index}" ON "{schema}"."{table}" '
                         f'("{column}")')
        self.execute(f'ANALYZE "{schema}"."{table}"')

    def close(self):
        if self._scratch is not None:
            self._scratch.close()
        self._con.close()


def _ensure_table(warehouse, schema: str, table: str,
                  ddl_columns: list[tuple[str, str]]) -> None:
    """Create the table, or add the columns an older version of it lacks."""
    warehouse.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    warehouse.execute(_create_table_sql(schema, table, ddl_columns))
    add_missing_columns(warehouse, schema, table, ddl_columns)


def add_missing_columns(warehouse, schema: str, table: str,
                        ddl_columns: list[tuple[str, str]]) -> None:
    """Add the columns an older version of the table lacks."""
    have = set(warehouse.fetch_frame(
        "select column_name from information_schema.columns where table_schema = ? "
        "and table_name = ?", [schema, table])["column_name"])
    for name, sql_type in ddl_columns:
        if name not in have:
            warehouse.execute(f'ALTER TABLE "{schema}"."{table}" ADD COLUMN "{name}" {sql_type}')


def create_table_once(warehouse, schema: str, table: str, body: str) -> None:
    """CREATE TABLE IF NOT EXISTS where other workers may create the same table at the
    same moment (DuckDB then reports a catalog conflict): tried again briefly."""
    for attempt in range(5):
        try:
            warehouse.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            warehouse.execute(f'CREATE TABLE IF NOT EXISTS "{schema}"."{table}" ({body})')
            return
        except Exception as exc:
            if "conflict" not in str(exc).lower() and "already exists" not in str(exc):
                raise
            time.sleep(0.05 * (attempt + 1))
            if warehouse.table_exists(schema, table):
                return
    raise RuntimeError(f'could not create "{schema}"."{table}": kept conflicting')


def _create_table_sql(schema: str, table: str, ddl_columns: list[tuple[str, str]]) -> str:
    body = ", ".join(f'"{name}" {sql_type}' for name, sql_type in ddl_columns)
    return f'CREATE TABLE IF NOT EXISTS "{schema}"."{table}" ({body})'


class WarehouseMissing(UserError):
    """Nothing has been built yet where the settings point."""


class WarehouseBusy(RetryableError):
    """Another process holds the DuckDB file for writing longer than we may wait."""


class WarehouseUnreachable(RetryableError):
    """The PostgreSQL server does not answer or refuses the login."""


def open_warehouse(settings: Settings, read_only: bool = False) -> Warehouse:
    if settings.warehouse.kind == "duckdb":
        if read_only and not settings.duckdb_path.exists():
            raise WarehouseMissing(
                f"warehouse {settings.duckdb_path} does not exist yet: run `servicepulse "
                "run --date …` (or `make demo`) first")
        settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        return _open_duckdb_waiting(settings, read_only)
    import psycopg2

    postgres = settings.warehouse.postgres
    try:
        return PostgresWarehouse(postgres.dsn())
    except psycopg2.OperationalError as exc:
        first = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        raise WarehouseUnreachable(
            f"PostgreSQL warehouse {postgres.host}:{postgres.port}/{postgres.dbname} cannot be "
            f"reached: {first}; check that the server runs and the settings' warehouse."
            "postgres section and $SERVICEPULSE_PG_PASSWORD, then run again") from None


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>\S+) \(PID (?P<pid>\d+)\)")


def _open_duckdb_waiting(settings: Settings, read_only: bool) -> DuckDBWarehouse:
    """DuckDB has one writer at a time: while another process writes the file, wait
    (bounded by warehouse.lock_wait_seconds, saying so once), then name the holder."""
    import duckdb

    path = settings.duckdb_path

    def open_it() -> tuple[DuckDBWarehouse | None, str | None]:
        turn, dbt_pid = _take_turn(path, exclusive=False)
        if turn is None:
            return None, (describe_lock_holder(settings, dbt_pid, "dbt") if dbt_pid
                          else "a dbt run is writing it")
        try:
            return DuckDBWarehouse(str(path), read_only=read_only, turn=turn), None
        except duckdb.IOException as exc:
            turn.close()
            holder = _LOCK_HOLDER.search(str(exc))
            if holder is None:
                raise
            return None, describe_lock_holder(settings, int(holder["pid"]),
                                              holder["program"])
        except BaseException:
            turn.close()
            raise

    return _wait_for_the_file(settings, open_it)


def _wait_for_the_file(settings: Settings, attempt: Callable[[], tuple[T | None, str | None]]
                       ) -> T:
    """Call ``attempt`` until the DuckDB file is ours, as wait_while_held, with the
    warehouse's wait limit and its WarehouseBusy at the end."""
    path = settings.duckdb_path
    return wait_while_held(attempt, settings.warehouse.lock_wait_seconds,
                           f"the warehouse {path}: ",
                           lambda held: WarehouseBusy(f"warehouse {path} is busy: {held}"))


def _turn_file(path: Path) -> Path:
    return path.with_name(path.name + ".turn")


def _take_turn(path: Path, exclusive: bool) -> tuple[Any, int]:
    """(the open turn file, 0) when the turn is ours, else (None, the pid of the dbt run
    holding it exclusively, or 0 when readers hold it)."""
    import fcntl
    import os

    turn = open(_turn_file(path), "a+", encoding="ascii")  # noqa: SIM115 (held open)
    try:
        fcntl.flock(turn, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        turn.seek(0)
        text = turn.read().strip()
        turn.close()
        return None, int(text) if text.isdigit() else 0
    if exclusive:
        turn.seek(0)
        turn.truncate()
        turn.write(str(os.getpid()))
        turn.flush()
    return turn, 0


@contextmanager
def dbt_turn(settings: Settings) -> Iterator[None]:
    """The DuckDB file to dbt alone while dbt runs.

    DuckDB lets one process at a time write a file and refuses a second at once. This
    package's connections wait and try again (_open_duckdb_waiting); dbt, a program of its
    own, fails instead, so a `servicepulse kpis` opening the file a moment before dbt would
    fail the nightly build. Every connection this package opens therefore holds a shared
    turn (a flock on ``<file>.turn``) for its life, and a dbt run holds it exclusively:
    dbt starts once no reader has the file open, and no reader opens it until dbt has
    finished; each side waits up to warehouse.lock_wait_seconds, saying once for whom.
    PostgreSQL needs no turns."""
    if settings.warehouse.kind != "duckdb":
        yield
        return
    path = settings.duckdb_path
    path.parent.mkdir(parents=True, exist_ok=True)

    def take() -> tuple[Any, str | None]:
        turn, _ = _take_turn(path, exclusive=True)
        return (turn, None) if turn is not None else (
            None, "the processes reading or writing it to close it")

    turn = _wait_for_the_file(settings, take)
    try:
        yield
    finally:
        turn.seek(0)
        turn.truncate()
        turn.close()


def describe_lock_holder(settings: Settings, pid: int, program: str = "") -> str:
    """Who holds the warehouse: the run that took the project's run lock, if it is the
    same process, else the process DuckDB names."""
    from servicepulse.run_lock import current_holder, describe

    holder = current_holder(settings)
    if holder and int(holder.get("pid", -1)) == pid:
        return f"{describe(holder)} is writing it"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace").strip()
    except OSError:
        command = program
    return f"process {pid} ({command[:120] or program}) is writing it"


@contextmanager
def connected(settings: Settings, read_only: bool = False) -> Iterator[Warehouse]:
    warehouse = open_warehouse(settings, read_only=read_only)
    try:
        yield warehouse
    finally:
        warehouse.close()
