"""Why the buffered dialect exists: GX fetches a result after the connection is
back in the pool. With it, the rows survive; the query still runs in DuckDB."""

import duckdb
import sqlalchemy as sa

from servicepulse.quality.duckdb_dialect import register


def test_rows_survive_returning_the_connection_to_the_pool(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("create table t as select range as id from range(10)")
    register()
    engine = sa.create_engine(f"duckdb+buffered:///{path}")
    with engine.connect() as connection:
        result = connection.execute(sa.text("select count(*), sum(id) from t"))
    assert result.fetchall() == [(10, 45)]
    assert engine.dialect.name == "duckdb"
    engine.dispose()


def test_plain_duckdb_engine_loses_them(tmp_path):
    """Documents the upstream behaviour the dialect works around; if duckdb_engine
    ever buffers results itself, this fails and the workaround can go."""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("create table t as select range as id from range(10)")
    engine = sa.create_engine(f"duckdb:///{path}")
    with engine.connect() as connection:
        result = connection.execute(sa.text("select count(*) from t"))
    try:
        rows = result.fetchall()
    except (sa.exc.SQLAlchemyError, duckdb.Error):
        rows = []
    assert rows != [(10,)]
    engine.dispose()


def test_close_all_releases_the_file_for_another_process(tmp_path):
    import subprocess
    import sys

    from servicepulse.quality.duckdb_dialect import close_all

    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    register()
    engine = sa.create_engine(f"duckdb+buffered:///{path}")
    connection = engine.connect()
    connection.execute(sa.text("select 1"))  # held, as GX holds its connections
    writer = [sys.executable, "-c",
              f"import duckdb; duckdb.connect({str(path)!r}).execute('create table t (i int)')"]
    assert subprocess.run(writer, capture_output=True, check=False).returncode != 0  # locked
    assert close_all() >= 1
    assert subprocess.run(writer, capture_output=True, check=False).returncode == 0
