"""The send ledger: which report went to whom, once.

One row per (report, period, recipient, sequence). The scheduled delivery of a
period is sequence 0, so the table's key itself guarantees that at most one worker
ever claims it, on DuckDB and on PostgreSQL, however many retries, re-runs or
parallel workers try; a deliberate re-send takes the next sequence number.

A row moves  sending -> sent | failed | retry | in_doubt:
- sending: claimed (``claimed_by``, ``claimed_at``) under a lease (``worker``: host,
  pid and the process's start time); ``handover_started_at`` is set the moment the
  message is handed over (the SMTP DATA command, the outbox file's rename).
- sent: the server (or the outbox) accepted it; ``smtp_reply`` names it there.
- failed: refused for good (bad mailbox, ...); not tried again automatically.
- retry: not handed over (temporary failures used up the attempts, or anything that
  went wrong before the hand-over: a full disk, a broken message); the next run, or
  the task's retry, claims it again.
- in_doubt: handed over without a confirmation: the connection dropped after the
  message, or the worker died between the hand-over and this table. Never re-sent
  automatically: the data team is told, checks the mail server's log for the
  Message-ID, and settles it (`servicepulse deliveries settle`).

A claim whose worker is gone is resolved by the next run at once: back to sending
(this run sends it) when no hand-over had started, in doubt when one had. Whether a
worker is gone is known for workers on this host (its pid and start time); a claim
from another host is judged after ``delivery.in_doubt_after_minutes``. A claim whose
worker is alive is another run sending right now: this run waits for its outcome.

The content hash (subject, bodies and attachment) is recorded with every row: a
period re-rendered from changed data after its delivery is reported as changed, not
silently sent a second time.

A report's audiences are sent by tasks running at once on several workers. On
PostgreSQL each holds a connection while it sends; a DuckDB file has one writing
process at a time, so there a delivery holds it only for about a second of claims,
sends and outcomes at a time (LedgerConnection), and the others take turns.
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from servicepulse.errors import RetryableError, UserError
from servicepulse.settings import Settings
from servicepulse.warehouse import (
    Warehouse,
    add_missing_columns,
    create_table_once,
    open_warehouse,
)

TABLE = "send_ledger"
COLUMNS = """
    report VARCHAR NOT NULL,
    period VARCHAR NOT NULL,
    recipient VARCHAR NOT NULL,
    sequence INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    locale VARCHAR,
    department VARCHAR,
    role VARCHAR,
    content_hash VARCHAR NOT NULL,
    message_id VARCHAR NOT NULL,
    attachment_sha256 VARCHAR,
    archive_path VARCHAR,
    status VARCHAR NOT NULL,
    attempts INTEGER NOT NULL,
    claimed_by VARCHAR NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    smtp_reply VARCHAR,
    error VARCHAR,
    reason VARCHAR,
    worker VARCHAR,
    handover_started_at TIMESTAMPTZ,
    PRIMARY KEY (report, period, recipient, sequence)
"""
# Columns added after the first release: an older ledger gets them on first use.
ADDED_COLUMNS = (("worker", "VARCHAR"), ("handover_started_at", "TIMESTAMPTZ"))
# A claim that lost its insert reads the winner's row; until the winner commits there is
# none to read (DuckDB), so it tries again for up to 5 s.
CLAIM_READ_ATTEMPTS = 50
CLAIM_READ_PAUSE_SECONDS = 0.1


class LedgerBusy(RetryableError):
    """A ledger row another worker is writing could not be claimed or read in time."""


@dataclass(frozen=True)
class LedgerEntry:
    """What a delivery is about to send; ``claim`` records it."""
    report: str
    period: str
    recipient: str
    content_hash: str
    message_id: str
    locale: str | None = None
    department: str | None = None
    role: str | None = None
    attachment_sha256: str | None = None
    archive_path: str | None = None


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim a delivery.

    ``won``: this worker sends. Otherwise ``status`` says why not: sent (earlier),
    sending (another worker, right now), in_doubt, failed.
    """
    won: bool
    status: str
    sequence: int
    token: str
    previous: dict | None = None  # the row this claim found, when it lost
    # Already sent with another content hash: the report changed after delivery.
    content_changed: bool = False


# How long a delivery keeps a DuckDB file before it hands it back between two messages.
# DuckDB lets one process at a time open its file for writing, so while one report task
# sends, every other one waits for the file, to claim its own sends or even to read its
# mart rows. Long enough that a run of quick messages (the file outbox, a fast relay)
# pays for one connection, short enough that the others barely wait.
DUCKDB_HOLD_SECONDS = 1.0


class LedgerConnection:
    """The warehouse as one delivery's ledger reads and writes it: opened on first use;
    on DuckDB handed back between two messages once held ``hold_seconds`` (and while
    waiting for another worker's send), then opened again for the next claim. Each
    ledger statement commits by itself, so a claim never spans two connections.
    PostgreSQL takes any number of writers: there one connection serves the whole
    delivery."""

    def __init__(self, settings: Settings, hold_seconds: float) -> None:
        self.settings = settings
        self.hold_seconds = hold_seconds
        self._warehouse: Warehouse | None = None
        self._opened_at = 0.0

    def _open(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = open_warehouse(self.settings)
            self._opened_at = time.monotonic()
        return self._warehouse

    def execute(self, sql: str, params: tuple | list | None = None) -> None:
        self._open().execute(sql, params)

    def fetch_frame(self, sql: str, params: tuple | list | None = None) -> pd.DataFrame:
        return self._open().fetch_frame(sql, params)

    def table_exists(self, schema: str, table: str) -> bool:
        return self._open().table_exists(schema, table)

    def between_messages(self) -> None:
        """One message is done (claimed, sent, recorded): give the file back if it has
        been held for a while."""
        if self._warehouse is not None and \
                time.monotonic() - self._opened_at >= self.hold_seconds:
            self.close()

    def while_waiting(self) -> None:
        """About to wait for another worker: that worker needs the file to record its
        outcome (DuckDB)."""
        if math.isfinite(self.hold_seconds):
            self.close()

    def close(self) -> None:
        if self._warehouse is not None:
            warehouse, self._warehouse = self._warehouse, None
            warehouse.close()


@contextmanager
def ledger_connection(settings: Settings) -> Iterator[LedgerConnection]:
    """A delivery's connection to the ledger (LedgerConnection), closed at the end."""
    hold = DUCKDB_HOLD_SECONDS if settings.warehouse.kind == "duckdb" else math.inf
    connection = LedgerConnection(settings, hold)
    try:
        yield connection
    finally:
        connection.close()


def table_name(settings: Settings) -> str:
    return f'"{settings.warehouse.schema("delivery")}"."{TABLE}"'


def ensure_ledger(settings: Settings, warehouse: Warehouse) -> None:
    schema = settings.warehouse.schema("delivery")
    if warehouse.table_exists(schema, TABLE):
        add_missing_columns(warehouse, schema, TABLE, list(ADDED_COLUMNS))
        return
    create_table_once(warehouse, schema, TABLE, COLUMNS)


def _now() -> datetime:
    # Operational bookkeeping (when a worker claimed a send), not report logic.
    return datetime.now(UTC)


def new_token(run_id: str | None = None) -> str:
    return f"{run_id or 'manual'}/{uuid.uuid4().hex[:12]}"


def this_worker() -> str:
    """The lease of this process: host, pid and its start time (a pid is reused, a
    pid with the same start time is the same process)."""
    pid = os.getpid()
    return f"{socket.gethostname()}|{pid}|{_start_ticks(pid)}"


def _proc_stat(pid: int) -> list[str] | None:
    """Linux /proc/<pid>/stat after the command in parentheses: state is field 0,
    the start time (in clock ticks since boot) field 19."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_ticks(pid: int) -> str:
    stat = _proc_stat(pid)
    return stat[19] if stat and len(stat) > 19 else "?"


def worker_state(worker: str | None) -> str:
    """alive, gone, or unknown (another host, or a claim from before leases)."""
    if not worker:
        return "unknown"
    host, _, rest = worker.partition("|")
    pid_text, _, ticks = rest.partition("|")
    if host != socket.gethostname() or not pid_text.isdigit():
        return "unknown"
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # exists, someone else's
    if ticks not in ("?", "") and _start_ticks(pid) not in ("?", ticks):
        return "gone"  # the pid now belongs to another process
    if _is_zombie(pid):
        return "gone"
    return "alive"


def _is_zombie(pid: int) -> bool:
    stat = _proc_stat(pid)
    return bool(stat) and stat[0] == "Z"


def claim(settings: Settings, warehouse: Warehouse, entry: LedgerEntry, token: str,
          kind: str = "scheduled", reason: str | None = None) -> Claim:
    """Claim the delivery of ``entry``: the scheduled one (sequence 0), or, for
    ``kind="resend"``, a new sequence number."""
    table = table_name(settings)
    if kind == "resend":
        for _ in range(5):  # two simultaneous re-sends race for the same number
            sequence = int(warehouse.fetch_frame(
                f"select coalesce(max(sequence), 0) + 1 as n from {table} where report = ? "
                "and period = ? and recipient = ?",
                [entry.report, entry.period, entry.recipient])["n"].iloc[0])
            if _insert(warehouse, table, entry, sequence, kind, token, reason):
                return Claim(True, "sending", sequence, token)
        raise RuntimeError(f"could not number a re-send of {entry.report} {entry.period} "
                           f"to {entry.recipient}: too many simultaneous re-sends")
    existing = None
    for _ in range(CLAIM_READ_ATTEMPTS):
        if _insert(warehouse, table, entry, 0, kind, token, reason):
            return Claim(True, "sending", 0, token)
        existing = _row_if_any(warehouse, table, entry, 0)
        if existing is not None:
            break
        # On DuckDB an insert loses to another's before that one commits: its row cannot
        # be read yet (or that insert lost too, to ours, and is gone). Try both again.
        time.sleep(CLAIM_READ_PAUSE_SECONDS)
    if existing is None:
        raise LedgerBusy(f"the delivery ledger {table}: {entry.report} {entry.period} to "
                         f"{entry.recipient} could neither be claimed nor read for "
                         f"{CLAIM_READ_ATTEMPTS * CLAIM_READ_PAUSE_SECONDS:.0f} s; another "
                         "worker holds it: try again")
    previous = dict(existing)
    status = existing["status"]
    if status == "retry":
        reclaimed = warehouse.fetch_frame(
            f"update {table} set status = 'sending', claimed_by = ?, claimed_at = ?, "
            "worker = ?, attempts = attempts + 1, content_hash = ?, message_id = ?, "
            "attachment_sha256 = ?, archive_path = ?, handover_started_at = null, error = null "
            "where report = ? and period = ? and recipient = ? and sequence = 0 "
            "and status = 'retry' returning claimed_by",
            [token, _now(), this_worker(), entry.content_hash, entry.message_id,
             entry.attachment_sha256, entry.archive_path, entry.report, entry.period,
             entry.recipient])
        if len(reclaimed):
            return Claim(True, "sending", 0, token, previous)
        return Claim(False, _row(warehouse, table, entry, 0)["status"], 0, token, previous)
    if status == "sending":
        return _claim_in_flight(settings, warehouse, entry, token, existing, previous)
    return Claim(False, status, 0, token, previous,
                 content_changed=status == "sent"
                 and existing["content_hash"] != entry.content_hash)


def _claim_in_flight(settings: Settings, warehouse: Warehouse, entry: LedgerEntry,
                     token: str, existing: dict, previous: dict) -> Claim:
    """Another claim holds the send. Its worker alive: it is sending now (the caller
    waits for it). Gone, or silent past the in-doubt time: before a hand-over this run
    takes the send over; after one, the send is in doubt."""
    table = table_name(settings)
    state = worker_state(existing.get("worker"))
    if state == "alive":
        return Claim(False, "sending", 0, token, previous)
    handed_over = not _missing(existing.get("handover_started_at"))
    if state == "unknown":
        cutoff = _now() - timedelta(minutes=settings.delivery.in_doubt_after_minutes)
        if pd.Timestamp(existing["claimed_at"]) >= pd.Timestamp(cutoff):
            return Claim(False, "sending", 0, token, previous)
        # A claim from before leases may have handed over without recording it.
        handed_over = handed_over or _missing(existing.get("worker"))
    holder = f"{existing['claimed_by']} ({existing.get('worker') or 'worker unknown'})"
    if not handed_over:
        taken = warehouse.fetch_frame(
            f"update {table} set status = 'sending', claimed_by = ?, claimed_at = ?, "
            "worker = ?, attempts = attempts + 1, content_hash = ?, message_id = ?, "
            "attachment_sha256 = ?, archive_path = ?, handover_started_at = null, error = ? "
            "where report = ? and period = ? and recipient = ? and sequence = 0 "
            "and status = 'sending' and claimed_by = ? returning claimed_by",
            [token, _now(), this_worker(), entry.content_hash, entry.message_id,
             entry.attachment_sha256, entry.archive_path,
             f"taken over: {holder} stopped before handing the message over",
             entry.report, entry.period, entry.recipient, existing["claimed_by"]])
        if len(taken):
            return Claim(True, "sending", 0, token, previous)
        return Claim(False, _row(warehouse, table, entry, 0)["status"], 0, token, previous)
    previous["error"] = (
        f"claimed by {holder} at {existing['claimed_at']}"
        + (f", handed over to the mail server at {existing['handover_started_at']}"
           if not _missing(existing.get("handover_started_at")) else "")
        + " and never confirmed: the worker stopped between handing the message over "
          "and recording the server's answer")
    mark(settings, warehouse, entry, 0, existing["claimed_by"], "in_doubt",
         error=previous["error"])
    return Claim(False, "in_doubt", 0, token, previous)


def _missing(value) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))


def mark_handover(settings: Settings, warehouse: Warehouse, entry: LedgerEntry,
                  sequence: int, token: str) -> None:
    """Record that the hand-over starts now: from here a lost answer means in doubt."""
    warehouse.execute(
        f"update {table_name(settings)} set handover_started_at = ? where report = ? "
        "and period = ? and recipient = ? and sequence = ? and claimed_by = ?",
        [_now(), entry.report, entry.period, entry.recipient, sequence, token])


def _insert(warehouse: Warehouse, table: str, entry: LedgerEntry, sequence: int, kind: str,
            token: str, reason: str | None) -> bool:
    """True if this worker inserted the row. A concurrent insert of the same key loses:
    on PostgreSQL by ON CONFLICT, on DuckDB by a write-write conflict at commit."""
    try:
        return _insert_row(warehouse, table, entry, sequence, kind, token, reason)
    except Exception as exc:
        if "conflict" not in str(exc).lower() and "duplicate key" not in str(exc).lower():
            raise
        return False


def _insert_row(warehouse: Warehouse, table: str, entry: LedgerEntry, sequence: int,
                kind: str, token: str, reason: str | None) -> bool:
    inserted = warehouse.fetch_frame(
        f"insert into {table} (report, period, recipient, sequence, kind, locale, department, "
        "role, content_hash, message_id, attachment_sha256, archive_path, status, attempts, "
        "claimed_by, claimed_at, reason, worker) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, 'sending', 1, ?, ?, ?, ?) on conflict do nothing returning sequence",
        [entry.report, entry.period, entry.recipient, sequence, kind, entry.locale,
         entry.department, entry.role, entry.content_hash, entry.message_id,
         entry.attachment_sha256, entry.archive_path, token, _now(), reason,
         this_worker()])
    return len(inserted) > 0


def _row(warehouse: Warehouse, table: str, entry: LedgerEntry, sequence: int) -> dict:
    row = _row_if_any(warehouse, table, entry, sequence)
    if row is None:
        raise LedgerBusy(f"the delivery ledger {table} has no row for {entry.report} "
                         f"{entry.period} to {entry.recipient} (sequence {sequence}) that "
                         "this worker's claim found a moment ago: try again")
    return row


def _row_if_any(warehouse: Warehouse, table: str, entry: LedgerEntry,
                sequence: int) -> dict | None:
    frame = warehouse.fetch_frame(
        f"select * from {table} where report = ? and period = ? and recipient = ? "
        "and sequence = ?", [entry.report, entry.period, entry.recipient, sequence])
    rows = frame.to_dict(orient="records")
    return rows[0] if rows else None


def mark(settings: Settings, warehouse: Warehouse, entry: LedgerEntry, sequence: int,
         token: str, status: str, smtp_reply: str | None = None,
         error: str | None = None) -> None:
    """Record the outcome of a claimed send; only the claiming worker may."""
    warehouse.execute(
        f"update {table_name(settings)} set status = ?, finished_at = ?, smtp_reply = ?, "
        "error = ? where report = ? and period = ? and recipient = ? and sequence = ? "
        "and claimed_by = ?",
        [status, _now(), smtp_reply, error, entry.report, entry.period, entry.recipient,
         sequence, token])


def ledger_rows(settings: Settings, warehouse: Warehouse, report: str | None = None,
                period: str | None = None) -> list[dict]:
    """The ledger's rows by report, period, recipient, sequence; none before the first
    delivery (reading does not create the table, so it works read-only)."""
    if not warehouse.table_exists(settings.warehouse.schema("delivery"), TABLE):
        return []
    where, params = [], []
    if report:
        where.append("report = ?")
        params.append(report)
    if period:
        where.append("period = ?")
        params.append(period)
    frame = warehouse.fetch_frame(
        f"select * from {table_name(settings)}"
        + (f" where {' and '.join(where)}" if where else "")
        + " order by report, period, recipient, sequence", params)
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


class SettleError(UserError, ValueError):
    pass


def settle(settings: Settings, warehouse: Warehouse, report: str, period: str, recipient: str,
           delivered: bool, note: str) -> dict:
    """Record what a person found out about an in-doubt send: delivered (it counts as
    sent) or not (the scheduled send is claimed again by the next run; a re-send is
    closed as failed, re-send again if wanted)."""
    ensure_ledger(settings, warehouse)
    table = table_name(settings)
    rows = warehouse.fetch_frame(
        f"select sequence from {table} where report = ? and period = ? and recipient = ? "
        "and status = 'in_doubt' order by sequence", [report, period, recipient])
    if rows.empty:
        raise SettleError(f"no in-doubt delivery of {report} {period} to {recipient} "
                          "(see `servicepulse deliveries`)")
    sequence = int(rows["sequence"].iloc[-1])
    status = "sent" if delivered else ("retry" if sequence == 0 else "failed")
    verdict = "delivered" if delivered else "not delivered"
    warehouse.execute(
        f"update {table} set status = ?, finished_at = ?, "
        "error = coalesce(error, '') || ? where report = ? and period = ? "
        "and recipient = ? and sequence = ? and status = 'in_doubt'",
        [status, _now(), f" | settled by hand as {verdict}: {note}", report, period,
         recipient, sequence])
    return {"report": report, "period": period, "recipient": recipient,
            "sequence": sequence, "status": status}
