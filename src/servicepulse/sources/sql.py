"""The SQL database source (the CRM): one table read with SQLAlchemy, incrementally.

Rows whose version column lies in the load window are extracted and landed as one
CSV file (the delivery kept unchanged, like any file drop), then loaded like one.
From PostgreSQL the extract is ``COPY (SELECT ...) TO STDOUT``, streamed straight
into the landing file; other databases are read in batches of ``fetch_rows`` through
a server-side cursor where the driver has one. Memory stays one batch either way.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from servicepulse.errors import RetryableError, UserError
from servicepulse.redact import redact
from servicepulse.settings import Settings, SqlConnector
from servicepulse.sources.landing import LandedFile, land_stream


class SqlSourceError(UserError, ValueError):
    pass


class SqlSourceUnreachable(RetryableError):
    """The source database is down or refuses the connection: a later try may work."""


def _with_driver(url: str) -> str:
    # SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3; the lock installs psycopg2.
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain):]
    return url


def source_url(settings: Settings, source: str, connector: SqlConnector,
               environ: dict[str, str] | None = None) -> str:
    return _with_driver(_configured_url(settings, source, connector, environ))


def _configured_url(settings: Settings, source: str, connector: SqlConnector,
                    environ: dict[str, str] | None = None) -> str:
    """The Airflow connection's URI, else $SERVICEPULSE_SOURCE_<SOURCE>_URL, else the
    configured URL (relative SQLite paths resolved against the config file's folder)."""
    from servicepulse.connections import airflow_connection

    environ = os.environ if environ is None else environ
    if connector.connection_id:
        connection = airflow_connection(connector.connection_id)
        if connection is not None:
            return connection.get_uri()
    if url := environ.get(f"SERVICEPULSE_SOURCE_{source.upper()}_URL"):
        return url
    if connector.url:
        prefix = "sqlite:///"
        if connector.url.startswith(prefix) and not connector.url.startswith(prefix + "/"):
            return prefix + str(settings.path(Path(connector.url[len(prefix):])))
        return connector.url
    raise SqlSourceError(
        f"no database for source {source}: define the Airflow connection "
        f"{connector.connection_id!r}, set SERVICEPULSE_SOURCE_{source.upper()}_URL or "
        "the connector's url")


def extract_table(settings: Settings, source: str, connector: SqlConnector,
                  window_start: datetime | None, window_end: datetime,
                  version_column: str = "updated_at") -> LandedFile:
    import sqlalchemy as sa

    from servicepulse.sources.errors import SourceError

    url = source_url(settings, source, connector)
    reverse = {target: delivered for delivered in connector.mapping.columns
               for target in connector.mapping.fields_of(delivered)}
    version = reverse.get(version_column, version_column)
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise SqlSourceError(f"source {source}: the database URL {redact(url)} cannot be "
                             f"used: {redact(str(exc).splitlines()[0])}") from None
    origin = f"{engine.url.render_as_string(hide_password=True)} {connector.db_schema + '.' if connector.db_schema else ''}{connector.table}"
    try:
        try:
            connected = engine.connect()
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            first = str(getattr(exc, "orig", exc)).strip().splitlines() or [repr(exc)]
            raise SqlSourceUnreachable(
                f"source {source}: the database {origin} cannot be reached: "
                f"{redact(first[0])}; check that it runs and the URL's host, port and "
                "login, then run again (the task retries by itself)") from None
        with connected as connection:
            try:
                table = sa.Table(connector.table, sa.MetaData(), schema=connector.db_schema,
                                 autoload_with=connection)
            except sa.exc.NoSuchTableError:
                raise SourceError(source, origin, "table does not exist") from None
            if version not in table.c:
                raise SourceError(source, origin, "version column missing",
                                  column=version_column)
            column = table.c[version]
            aware = bool(getattr(column.type, "timezone", False)) or \
                connection.dialect.name == "postgresql"
            # The window's bounds in the zone the loader reads naive values in.
            zone = ZoneInfo(settings.sources.naive_timezone(connector) or "UTC")

            def bound(moment: datetime):
                return moment if aware else moment.astimezone(zone).replace(tzinfo=None)
            condition = column < bound(window_end)
            if window_start is not None:
                condition = sa.and_(column >= bound(window_start), condition)
            query = sa.select(table).where(condition).order_by(column)
            if connection.dialect.name == "postgresql":
                write = _postgres_copy(connection, query)
            else:
                write = _batched_csv(connection, query, connector.fetch_rows)
            return land_stream(settings.landing_path, source, origin, write, ".csv", "csv",
                               "utf-8")
    finally:
        engine.dispose()


def _postgres_copy(connection, query):
    compiled = str(query.compile(dialect=connection.dialect,
                                 compile_kwargs={"literal_binds": True}))

    def write(out) -> None:
        raw = connection.connection.dbapi_connection
        with raw.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.copy_expert(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, HEADER true)",
                               out)
    return write


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _batched_csv(connection, query, fetch_rows: int):
    def write(out) -> None:
        result = connection.execution_options(stream_results=True,
                                              yield_per=fetch_rows).execute(query)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.keys())
        for rows in result.partitions():
            writer.writerows([_text(v) for v in row] for row in rows)
            out.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
        out.write(buffer.getvalue().encode("utf-8"))
    return write
