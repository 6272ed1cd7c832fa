"""One writing run per warehouse at a time; a second one waits in line, saying for whom.

DuckDB has one writer at a time, and two runs of the same night on PostgreSQL would
replace each other's slices. The writing commands (load, build, run, publish, resend,
demo, settling a delivery) take this lock for the warehouse they write: a file lock
(``flock``) beside the DuckDB file, or per PostgreSQL database and schema prefix under
the output folder. The kernel releases it when the holder exits, however it exits, so
a killed run never leaves it behind. The lock file says who holds it (pid, host,
command, start time) for the message the next run prints while it waits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from servicepulse.errors import RetryableError
from servicepulse.filenames import safe_name
from servicepulse.settings import Settings
from servicepulse.waiting import wait_while_held


class RunBusy(RetryableError):
    """Another run holds the warehouse longer than this one may wait."""


def lock_path(settings: Settings) -> Path:
    if settings.warehouse.kind == "duckdb":
        return settings.duckdb_path.with_name(settings.duckdb_path.name + ".run.lock")
    postgres = settings.warehouse.postgres
    name = safe_name(f"{postgres.host}-{postgres.port}-{postgres.dbname}-"
                     f"{settings.warehouse.schema_prefix or 'default'}")
    return settings.output_path / "locks" / f"{name}.run.lock"


def current_holder(settings: Settings) -> dict | None:
    """Who holds the run lock now (None: nobody)."""
    path = lock_path(settings)
    try:
        with path.open("r+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _holder(path)
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except FileNotFoundError:
        return None


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


def describe(holder: dict) -> str:
    return (f"the {holder.get('command', 'run')} started at {holder.get('started_at', '?')} "
            f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')})")


@contextlib.contextmanager
def run_lock(settings: Settings, command: str) -> Iterator[None]:
    """Hold the warehouse's run lock for ``command``; wait for it (bounded by
    warehouse.lock_wait_seconds, saying so once) while another run has it."""
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:

        def take() -> tuple[bool | None, str | None]:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True, None
            except BlockingIOError:
                return None, describe(_holder(path))

        wait_while_held(take, settings.warehouse.lock_wait_seconds, "",
                        lambda held: RunBusy(f"the warehouse is busy: {held}"))
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "command": command,
                                 "started_at": datetime.now(UTC).isoformat(
                                     timespec="seconds")}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
