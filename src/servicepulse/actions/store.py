"""Corrective actions in the warehouse (schema ``actions``, DuckDB and PostgreSQL alike).

- ``corrective_actions``: one row per action, its current state;
- ``findings``: one row per finding (a red period of a KPI slice, a breached complaint
  step, a failed audit), keyed so that a re-run never records one twice, with the
  action it opened or joined;
- ``action_history``: append-only, one row per change (who, when, what): nothing in
  the product updates or deletes a row of it;
- ``user_credentials``: salted password hashes of the app's users.

An action moves open -> done -> verified, or done -> reopened -> done -> ... Overdue
is not a state: an open or reopened action past its due date is overdue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from servicepulse.errors import UserError
from servicepulse.kpis import plain_records
from servicepulse.settings import Settings
from servicepulse.warehouse import Warehouse, add_missing_columns, create_table_once

OPEN, DONE, VERIFIED, REOPENED = "open", "done", "verified", "reopened"
STATUSES = (OPEN, DONE, VERIFIED, REOPENED)
# Still the department's to work (an open or reopened action past its due date is overdue).
TO_WORK = (OPEN, REOPENED)
UNCLOSED = (OPEN, DONE, REOPENED)
# The six cause groups of the standards (人、机、料、法、环、测).
CAUSE_GROUPS = ("people", "machine", "material", "method", "environment", "measurement")
SYSTEM_ACTOR = "servicepulse"

ACTIONS, FINDINGS, HISTORY, CREDENTIALS = (
    "corrective_actions", "findings", "action_history", "user_credentials")

DDL = {  # table -> its columns (CREATE TABLE body)
    ACTIONS: """
        action_id VARCHAR NOT NULL PRIMARY KEY,
        subject_key VARCHAR NOT NULL,
        finding_kind VARCHAR NOT NULL,
        kpi_id VARCHAR,
        complaint_id VARCHAR,
        audit_id VARCHAR,
        step VARCHAR,
        dimension VARCHAR NOT NULL,
        dimension_value VARCHAR NOT NULL,
        grain VARCHAR NOT NULL,
        department VARCHAR NOT NULL,
        owner VARCHAR,
        problem VARCHAR NOT NULL,
        problem_zh VARCHAR,
        standard VARCHAR,
        opened_at TIMESTAMPTZ NOT NULL,
        opened_on DATE NOT NULL,
        due_on DATE NOT NULL,
        status VARCHAR NOT NULL,
        cause_group VARCHAR,
        cause VARCHAR,
        measure VARCHAR,
        done_at TIMESTAMPTZ,
        done_by VARCHAR,
        verified_at TIMESTAMPTZ,
        reopened_count INTEGER NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    """,
    FINDINGS: """
        finding_key VARCHAR NOT NULL PRIMARY KEY,
        subject_key VARCHAR NOT NULL,
        action_id VARCHAR NOT NULL,
        finding_kind VARCHAR NOT NULL,
        kpi_id VARCHAR,
        dimension VARCHAR NOT NULL,
        dimension_value VARCHAR NOT NULL,
        department VARCHAR NOT NULL,
        period_start DATE,
        period_end DATE,
        found_on DATE NOT NULL,
        value DOUBLE PRECISION,
        target DOUBLE PRECISION,
        detail VARCHAR NOT NULL,
        detail_zh VARCHAR,
        recorded_at TIMESTAMPTZ NOT NULL
    """,
    HISTORY: """
        action_id VARCHAR NOT NULL,
        seq INTEGER NOT NULL,
        happened_at TIMESTAMPTZ NOT NULL,
        actor VARCHAR NOT NULL,
        event VARCHAR NOT NULL,
        detail VARCHAR NOT NULL,
        PRIMARY KEY (action_id, seq)
    """,
    CREDENTIALS: """
        username VARCHAR NOT NULL PRIMARY KEY,
        password_hash VARCHAR NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        sessions_valid_after TIMESTAMPTZ
    """,
}


# Columns added after a table's first version: an older table gets them on first use.
ADDED_COLUMNS = {ACTIONS: [("problem_zh", "VARCHAR")], FINDINGS: [("detail_zh", "VARCHAR")],
                 CREDENTIALS: [("sessions_valid_after", "TIMESTAMPTZ")]}


class ActionNotFound(UserError):
    """No action has this id."""


class ActionChangeRefused(UserError):
    """The change does not fit the action's state (e.g. marking a verified action done)."""


@dataclass(frozen=True)
class NewAction:
    """What tracking knows when a finding opens an action."""
    action_id: str
    subject_key: str
    finding_kind: str
    dimension: str
    dimension_value: str
    grain: str
    department: str
    owner: str | None
    problem: str
    standard: str | None
    opened_at: datetime
    due_on: date
    kpi_id: str | None = None
    complaint_id: str | None = None
    audit_id: str | None = None
    step: str | None = None
    problem_zh: str | None = None


def problem_in(row: dict[str, Any], locale: str, key: str = "problem") -> str:
    """A finding's or an action's problem in the reader's language."""
    return (row.get(f"{key}_zh") if locale == "zh-CN" else None) or row[key]


def days_overdue(status: str, due_on: date, today: date) -> int:
    """How many days an open or reopened action is past its due date on ``today``; 0 when
    it is not overdue (done and verified actions never are)."""
    return (today - due_on).days if status in TO_WORK and due_on < today else 0


def with_overdue(row: dict[str, Any], today: date) -> dict[str, Any]:
    late = days_overdue(row["status"], row["due_on"], today)
    return {**row, "overdue": late > 0, "days_overdue": late}


def filter_rows(rows: list[dict[str, Any]], status: str | None,
                today: date) -> list[dict[str, Any]]:
    """The rows with their overdue days, of one status or overdue (most overdue first)."""
    rows = [with_overdue(row, today) for row in rows]
    if status == "overdue":
        rows = sorted((row for row in rows if row["overdue"]),
                      key=lambda row: (-row["days_overdue"], row["action_id"]))
    elif status:
        rows = [row for row in rows if row["status"] == status]
    return rows


def schema(settings: Settings) -> str:
    return settings.warehouse.schema("actions")


def table(settings: Settings, name: str) -> str:
    return f'"{schema(settings)}"."{name}"'


def ensure_tables(settings: Settings, warehouse: Warehouse) -> None:
    name = schema(settings)
    for table_name, columns in DDL.items():
        if warehouse.table_exists(name, table_name):
            add_missing_columns(warehouse, name, table_name, ADDED_COLUMNS.get(table_name, []))
            continue
        create_table_once(warehouse, name, table_name, columns)


def now() -> datetime:
    """When a person changed something (their changes are stamped as they happen)."""
    return datetime.now(UTC)


def _rows(frame: pd.DataFrame, dates: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """A query's rows as plain Python (kpis.plain_records), ``dates`` as calendar dates
    (DuckDB returns a date as a midnight timestamp)."""
    rows = plain_records(frame)
    for row in rows:
        for key in dates:
            if isinstance(row.get(key), datetime):
                row[key] = row[key].date()
    return rows


def _select_actions(settings: Settings, warehouse: Warehouse, where: list[str],
                    params: list[Any]) -> list[dict[str, Any]]:
    frame = warehouse.fetch_frame(
        f"select a.*, (select count(*) from {table(settings, HISTORY)} h "
        f"where h.action_id = a.action_id) as history_count "
        f"from {table(settings, ACTIONS)} a "
        + (f"where {' and '.join(where)} " if where else "")
        + "order by a.opened_at desc, a.action_id", params)
    return _rows(frame, ("opened_on", "due_on"))


def actions(settings: Settings, warehouse: Warehouse, departments: list[str] | None = None,
            statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Actions, newest first, each with its history_count; ``departments`` limits them
    to those departments (a department head's view)."""
    where, params = [], []
    if departments is not None:
        if not departments:
            return []
        where.append(f"a.department in ({', '.join('?' for _ in departments)})")
        params += departments
    if statuses:
        where.append(f"a.status in ({', '.join('?' for _ in statuses)})")
        params += list(statuses)
    return _select_actions(settings, warehouse, where, params)


def action(settings: Settings, warehouse: Warehouse, action_id: str) -> dict[str, Any]:
    found = _select_actions(settings, warehouse, ["a.action_id = ?"], [action_id])
    if not found:
        raise ActionNotFound(f"no corrective action {action_id!r}")
    return found[0]


def history(settings: Settings, warehouse: Warehouse, action_id: str) -> list[dict[str, Any]]:
    frame = warehouse.fetch_frame(
        f"select * from {table(settings, HISTORY)} where action_id = ? order by seq",
        [action_id])
    rows = _rows(frame)
    for row in rows:
        row["detail"] = json.loads(row["detail"])
    return rows


def findings_of(settings: Settings, warehouse: Warehouse,
                action_id: str) -> list[dict[str, Any]]:
    frame = warehouse.fetch_frame(
        f"select * from {table(settings, FINDINGS)} where action_id = ? "
        "order by found_on, finding_key", [action_id])
    return _rows(frame, ("period_start", "period_end", "found_on"))


def known_finding_keys(settings: Settings, warehouse: Warehouse,
                       keys: list[str]) -> set[str]:
    if not keys:
        return set()
    known: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        frame = warehouse.fetch_frame(
            f"select finding_key from {table(settings, FINDINGS)} "
            f"where finding_key in ({', '.join('?' for _ in chunk)})", chunk)
        known |= set(frame["finding_key"])
    return known


def unclosed_action_of(settings: Settings, warehouse: Warehouse,
                       subject_key: str) -> str | None:
    frame = warehouse.fetch_frame(
        f"select action_id from {table(settings, ACTIONS)} where subject_key = ? "
        f"and status in ({', '.join('?' for _ in UNCLOSED)}) order by opened_at",
        [subject_key, *UNCLOSED])
    return None if frame.empty else str(frame["action_id"].iloc[0])


def _append_history(settings: Settings, warehouse: Warehouse, action_id: str, at: datetime,
                    actor: str, event: str, detail: dict[str, Any]) -> None:
    seq = int(warehouse.fetch_frame(
        f"select coalesce(max(seq), 0) + 1 as n from {table(settings, HISTORY)} "
        "where action_id = ?", [action_id])["n"].iloc[0])
    warehouse.execute(
        f"insert into {table(settings, HISTORY)} (action_id, seq, happened_at, actor, event, detail) "
        "values (?, ?, ?, ?, ?, ?)",
        [action_id, seq, at, actor, event,
         json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)])


def open_action(settings: Settings, warehouse: Warehouse, new: NewAction) -> None:
    with warehouse.transaction():
        warehouse.execute(
            f"insert into {table(settings, ACTIONS)} (action_id, subject_key, finding_kind, "
            "kpi_id, complaint_id, audit_id, step, dimension, dimension_value, grain, "
            "department, owner, problem, problem_zh, standard, opened_at, opened_on, due_on, "
            "status, reopened_count, updated_at) values "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            [new.action_id, new.subject_key, new.finding_kind, new.kpi_id, new.complaint_id,
             new.audit_id, new.step, new.dimension, new.dimension_value, new.grain,
             new.department, new.owner, new.problem, new.problem_zh, new.standard,
             new.opened_at,
             new.opened_at.date(), new.due_on, OPEN, new.opened_at])
        _append_history(settings, warehouse, new.action_id, new.opened_at, SYSTEM_ACTOR,
                        "opened", {"problem": new.problem, "department": new.department,
                                   "owner": new.owner, "due_on": new.due_on.isoformat()})


def record_finding(settings: Settings, warehouse: Warehouse, finding: dict[str, Any],
                   action_id: str, recorded_at: datetime) -> None:
    warehouse.execute(
        f"insert into {table(settings, FINDINGS)} (finding_key, subject_key, action_id, "
        "finding_kind, kpi_id, dimension, dimension_value, department, period_start, "
        "period_end, found_on, value, target, detail, detail_zh, recorded_at) values "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [finding["finding_key"], finding["subject_key"], action_id, finding["finding_kind"],
         finding.get("kpi_id"), finding["dimension"], finding["dimension_value"],
         finding["department"], finding.get("period_start"), finding.get("period_end"),
         finding["found_on"], finding.get("value"), finding.get("target"),
         finding["problem"], finding.get("problem_zh"), recorded_at])


def _change(settings: Settings, warehouse: Warehouse, action_id: str, actor: str,
            event: str, at: datetime, columns: dict[str, Any], detail: dict[str, Any],
            allowed_from: tuple[str, ...],
            departments: list[str] | None = None) -> dict[str, Any]:
    """Change an action in one transaction, if its state allows it and, with
    ``departments`` (a department head's), if it still belongs to one of them."""
    with warehouse.transaction():
        current = action(settings, warehouse, action_id)
        if departments is not None and current["department"] not in departments:
            raise ActionChangeRefused(f"action {action_id} belongs to another department")
        if current["status"] not in allowed_from:
            raise ActionChangeRefused(
                f"action {action_id} is {current['status']}: it cannot be {event} "
                f"(only when {' or '.join(allowed_from)})")
        assignments = ", ".join(f"{name} = ?" for name in columns)
        warehouse.execute(
            f"update {table(settings, ACTIONS)} set {assignments}, updated_at = ? "
            "where action_id = ?", [*columns.values(), at, action_id])
        _append_history(settings, warehouse, action_id, at, actor, event, detail)
    return action(settings, warehouse, action_id)


def record_work(settings: Settings, warehouse: Warehouse, action_id: str, actor: str,
                cause_group: str, cause: str, measure: str, at: datetime | None = None,
                departments: list[str] | None = None) -> dict[str, Any]:
    """The department's analysis: the cause (one of the six groups, and its words) and
    the corrective measure."""
    if cause_group not in CAUSE_GROUPS:
        raise ActionChangeRefused(f"cause group {cause_group!r} is not one of "
                                  f"{', '.join(CAUSE_GROUPS)}")
    cause, measure = cause.strip(), measure.strip()
    return _change(settings, warehouse, action_id, actor, "analysed", at or now(),
                   {"cause_group": cause_group, "cause": cause, "measure": measure},
                   {"cause_group": cause_group, "cause": cause, "measure": measure},
                   TO_WORK, departments)


def mark_done(settings: Settings, warehouse: Warehouse, action_id: str, actor: str,
              at: datetime | None = None,
              departments: list[str] | None = None) -> dict[str, Any]:
    """The measure is in place; the data verifies it in the periods that follow."""
    current = action(settings, warehouse, action_id)
    if current["status"] in TO_WORK and not (current["cause_group"] and current["measure"]):
        raise ActionChangeRefused(f"action {action_id}: record the cause and the measure "
                                  "before marking it done")
    at = at or now()
    return _change(settings, warehouse, action_id, actor, "done", at,
                   {"status": DONE, "done_at": at, "done_by": actor}, {}, TO_WORK,
                   departments)


def reassign(settings: Settings, warehouse: Warehouse, action_id: str, actor: str,
             department: str, owner: str | None, reason: str,
             at: datetime | None = None) -> dict[str, Any]:
    current = action(settings, warehouse, action_id)
    return _change(settings, warehouse, action_id, actor, "reassigned", at or now(),
                   {"department": department, "owner": owner},
                   {"from_department": current["department"], "from_owner": current["owner"],
                    "department": department, "owner": owner, "reason": reason.strip(),
                    "due_on": current["due_on"].isoformat()},
                   UNCLOSED)


def extend(settings: Settings, warehouse: Warehouse, action_id: str, actor: str,
           due_on: date, reason: str, at: datetime | None = None) -> dict[str, Any]:
    current = action(settings, warehouse, action_id)
    if not reason.strip():
        raise ActionChangeRefused("a deadline is extended with a reason")
    if due_on <= current["due_on"]:
        raise ActionChangeRefused(f"the new deadline {due_on} is not after the current "
                                  f"one, {current['due_on']}")
    return _change(settings, warehouse, action_id, actor, "extended", at or now(),
                   {"due_on": due_on},
                   {"from_due_on": current["due_on"].isoformat(),
                    "due_on": due_on.isoformat(), "reason": reason.strip()}, TO_WORK)


def reopen(settings: Settings, warehouse: Warehouse, action_id: str, actor: str,
           reason: str, due_on: date, at: datetime | None = None,
           evidence: dict[str, Any] | None = None) -> dict[str, Any]:
    """Back to the department: by a person (with a reason) or by verification (the KPI
    was off target again after the done date; ``evidence`` says where)."""
    if not reason.strip():
        raise ActionChangeRefused("an action is reopened with a reason")
    current = action(settings, warehouse, action_id)
    return _change(settings, warehouse, action_id, actor, "reopened", at or now(),
                   {"status": REOPENED, "due_on": due_on, "verified_at": None,
                    "reopened_count": int(current["reopened_count"]) + 1},
                   {"reason": reason.strip(), "due_on": due_on.isoformat(),
                    "department": current["department"], "owner": current["owner"],
                    **(evidence or {})}, (DONE, VERIFIED))


def verify(settings: Settings, warehouse: Warehouse, action_id: str, at: datetime,
           evidence: dict[str, Any]) -> dict[str, Any]:
    return _change(settings, warehouse, action_id, SYSTEM_ACTOR, "verified", at,
                   {"status": VERIFIED, "verified_at": at}, evidence, (DONE,))


def set_password_hash(settings: Settings, warehouse: Warehouse, username: str,
                      password_hash: str) -> None:
    """A new password also ends every session signed in with the old one."""
    changed = now()
    with warehouse.transaction():
        warehouse.execute(f"delete from {table(settings, CREDENTIALS)} where username = ?",
                          [username])
        warehouse.execute(f"insert into {table(settings, CREDENTIALS)} (username, "
                          "password_hash, updated_at, sessions_valid_after) values (?, ?, ?, ?)",
                          [username, password_hash, changed, changed])


def end_sessions(settings: Settings, warehouse: Warehouse, username: str) -> None:
    """Signing out ends every session of the user (on every device)."""
    warehouse.execute(f"update {table(settings, CREDENTIALS)} set sessions_valid_after = ? "
                      "where username = ?", [now(), username])


def sessions_valid_after(settings: Settings, warehouse: Warehouse,
                         username: str) -> datetime | None:
    """Sessions signed in before this moment are over; None: the user has no password."""
    frame = warehouse.fetch_frame(f"select sessions_valid_after, updated_at "
                                  f"from {table(settings, CREDENTIALS)} where username = ?",
                                  [username])
    if frame.empty:
        return None
    row = _rows(frame)[0]
    return row["sessions_valid_after"] or row["updated_at"]


def password_hash_of(settings: Settings, warehouse: Warehouse, username: str) -> str | None:
    if not warehouse.table_exists(schema(settings), CREDENTIALS):
        return None
    frame = warehouse.fetch_frame(f"select password_hash from {table(settings, CREDENTIALS)} "
                                  "where username = ?", [username])
    return None if frame.empty else str(frame["password_hash"].iloc[0])
