"""The rectification loop on hand-made data (tests/actions_data.py): findings open
actions, people work them, the data verifies or reopens them; re-running nights
changes nothing; the same on PostgreSQL; the command line's JSON."""

from __future__ import annotations

import json
import math
import shutil
from datetime import date, datetime

import pandas as pd
import pytest

from servicepulse.actions import people, store
from servicepulse.cli import main
from servicepulse.warehouse import connected
from tests import actions_data
from tests.actions_data import (
    OVERRIDES,
    RULES,
    X_SUBJECT,
    Y_SUBJECT,
    run_nights,
    tracked_copy,
)
from tests.conftest import settings_for
from tests.kpi_harness import SHANGHAI, load_and_build


def _comparable(value) -> str:
    """One form on both engines: instants in UTC, dates as dates, numbers rounded."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if hasattr(value, "tzinfo") and hasattr(value, "hour") and value.tzinfo is not None:
        return value.astimezone(SHANGHAI).isoformat()
    if hasattr(value, "date") and hasattr(value, "hour"):
        return value.date().isoformat() if value.hour == 0 and value.minute == 0 else \
            value.isoformat()
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def snapshot(settings) -> dict[str, list]:
    with connected(settings) as warehouse:
        return {name: [tuple(_comparable(v) for v in row) for row in warehouse.fetch_frame(
                    f"select * from {store.table(settings, name)} order by 1, 2")
                    .astype(object).itertuples(index=False)]
                for name in (store.ACTIONS, store.FINDINGS, store.HISTORY)}


@pytest.fixture(scope="module")
def built(actions_built):
    return actions_built


@pytest.fixture
def tracked(actions_built, tmp_path):
    """A private copy of the built data with every night of the eight weeks tracked."""
    return tracked_copy(actions_built, tmp_path)


def by_subject(settings) -> dict[str, dict]:
    with connected(settings) as warehouse:
        return {row["subject_key"]: row for row in store.actions(settings, warehouse)}


def test_findings_open_actions_and_the_data_verifies_them(tracked):
    actions = by_subject(tracked)
    assert set(actions) == {X_SUBJECT, Y_SUBJECT, "breach:PY1:classify", "audit:AU1"}, \
        "d_x's second red streak opens a new action; it is keyed by the same subject"
    with connected(tracked) as warehouse:
        x_actions = store.actions(tracked, warehouse)
        x_history = {row["action_id"]: store.history(tracked, warehouse, row["action_id"])
                     for row in x_actions}
        x_findings = {row["action_id"]: store.findings_of(tracked, warehouse, row["action_id"])
                      for row in x_actions}
    mine = sorted((row for row in x_actions if row["subject_key"] == X_SUBJECT),
                  key=lambda row: row["opened_on"])
    first, second = mine
    # Red W1, W2: found the Monday after W2; due 5 working days later.
    assert (first["opened_on"], first["due_on"]) == (date(2026, 8, 17), date(2026, 8, 24))
    assert first["status"] == "verified"
    # Done Wednesday 19 August; W4 and W5 green -> verified the midnight after W5.
    assert first["verified_at"] == datetime(2026, 9, 7, tzinfo=SHANGHAI)
    assert [e["event"] for e in x_history[first["action_id"]]] == [
        "opened", "analysed", "done", "verified"]
    assert x_history[first["action_id"]][-1]["detail"]["periods_on_target"] == [
        "2026-08-24", "2026-08-31"]
    # W3 was red too: its finding joined the open action instead of opening another.
    assert [f["period_start"] for f in x_findings[first["action_id"]]] == [
        date(2026, 8, 10), date(2026, 8, 17)]
    # Red again in W6, W7: a new action, due across Mid-Autumn (25 September off).
    assert (second["opened_on"], second["due_on"], second["status"]) == (
        date(2026, 9, 21), date(2026, 9, 29), "open")

    y = actions[Y_SUBJECT]
    # Red W3, W4 -> opened 31 August; done 1 September; W6 red -> reopened the midnight
    # after W6, due 5 working days on: Sunday 20 September is a working day in 2026.
    assert (y["opened_on"], y["status"], y["reopened_count"]) == (
        date(2026, 8, 31), "reopened", 1)
    assert y["due_on"] == date(2026, 9, 20)
    with connected(tracked) as warehouse:
        y_history = store.history(tracked, warehouse, y["action_id"])
    assert [e["event"] for e in y_history] == ["opened", "analysed", "done", "reopened"]
    assert y_history[-1]["happened_at"] == datetime(2026, 9, 14, tzinfo=SHANGHAI)
    assert y_history[-1]["detail"]["off_target_period"] == "2026-09-07"
    assert y_history[-1]["actor"] == store.SYSTEM_ACTOR

    breach = actions["breach:PY1:classify"]
    # Classify due 10:30, done 11:30: 60 minutes late, found at 11:30.
    assert breach["opened_at"] == datetime(2026, 8, 5, 11, 30, tzinfo=SHANGHAI)
    assert (breach["department"], breach["kpi_id"], breach["due_on"]) == (
        "d_y", "STEP_CLASSIFY_30M", date(2026, 8, 12))
    audit = actions["audit:AU1"]
    assert (audit["department"], audit["kpi_id"], audit["due_on"], audit["owner"]) == (
        "d_x", "TPS", date(2026, 8, 19), "head.x")
    # d_ok was always on target; AU2 passed.
    assert all(row["department"] != "d_ok" for row in x_actions)


def test_rerunning_every_night_changes_nothing(tracked):
    before = snapshot(tracked)
    for order in (1, 1, -1):  # three times more, the last one backwards
        summaries = run_nights(tracked, actions_data.FIRST_MONDAY, actions_data.LAST_DAY,
                               with_people=False, order=order)
        assert not any(s["new_findings"] or s["opened"] or s["verified"] or s["reopened"]
                       for s in summaries)
        assert snapshot(tracked) == before


def test_a_person_cannot_skip_the_analysis_or_redo_a_verified_action(tracked):
    actions = by_subject(tracked)
    with connected(tracked) as warehouse:
        with pytest.raises(store.ActionChangeRefused, match="record the cause"):
            store.mark_done(tracked, warehouse, actions["audit:AU1"]["action_id"], "head.x")
        verified = next(row for row in store.actions(tracked, warehouse)
                        if row["status"] == "verified")
        with pytest.raises(store.ActionChangeRefused, match="verified"):
            store.record_work(tracked, warehouse, verified["action_id"], "head.x", "people",
                              "x", "y")
        with pytest.raises(store.ActionChangeRefused, match="not one of"):
            store.record_work(tracked, warehouse, actions["audit:AU1"]["action_id"],
                              "head.x", "luck", "x", "y")


def test_actions_list_json(tracked, capsys):
    config = str(tracked.config_file)
    assert main(["actions", "list", "--config", config, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5
    required = {"action_id", "finding_kind", "kpi_id", "complaint_id", "department",
                "opened_at", "due_on", "status", "owner", "cause_group", "measure",
                "done_at", "verified_at", "history_count"}
    assert required <= set(rows[0])
    verified = [row for row in rows if row["status"] == "verified"]
    assert len(verified) == 1 and verified[0]["history_count"] == 4
    assert verified[0]["cause_group"] == "people" and verified[0]["measure"] == "岗前培训"
    breach = next(row for row in rows if row["finding_kind"] == "complaint_step_breach")
    assert breach["complaint_id"] == "PY1"

    assert main(["actions", "list", "--config", config, "--format", "json",
                 "--department", "d_y", "--status", "reopened"]) == 0
    reopened = json.loads(capsys.readouterr().out)
    assert [row["department"] for row in reopened] == ["d_y"]
    # Overdue (today is long after every due date): the open and reopened ones, most
    # overdue first.
    assert main(["actions", "list", "--config", config, "--format", "json",
                 "--status", "overdue"]) == 0
    overdue = json.loads(capsys.readouterr().out)
    assert {row["status"] for row in overdue} == {"open", "reopened"}
    assert len(overdue) == 4
    assert [row["days_overdue"] for row in overdue] == sorted(
        (row["days_overdue"] for row in overdue), reverse=True)


def test_an_unknown_kpi_in_the_rules_is_named(built, tmp_path, capsys):
    shutil.copytree(built.output_path, tmp_path / "output")
    settings = settings_for(tmp_path, built.sources_dir, **{
        **OVERRIDES, "actions": {**RULES, "kpi_rules": [{"kpis": ["RESP_SLAA"]}]}})
    assert main(["actions", "track", "--config", str(settings.config_file),
                 "--date", "2026-08-20"]) == 2
    assert "RESP_SLAA" in capsys.readouterr().err


def test_passwords_are_hashed_and_checked(tracked):
    with connected(tracked) as warehouse:
        people.set_password(tracked, warehouse, "head.x", "correct horse battery")
        stored = store.password_hash_of(tracked, warehouse, "head.x")
        assert stored.startswith("scrypt$") and "correct horse" not in stored
        assert people.authenticate(tracked, warehouse, "head.x", "correct horse battery")
        assert people.authenticate(tracked, warehouse, "head.x", "wrong horse battery") is None
        assert people.authenticate(tracked, warehouse, "nobody", "correct horse battery") is None
        with pytest.raises(people.PasswordRefused, match="at least"):
            people.set_password(tracked, warehouse, "head.x", "short")
        with pytest.raises(people.PasswordRefused, match="not in actions.users"):
            people.set_password(tracked, warehouse, "nobody", "long enough password")


@pytest.mark.postgres
def test_the_loop_on_postgresql_equals_duckdb(tracked, tmp_path, postgres_prefix):
    """The same nights on PostgreSQL give the same actions, findings and history."""
    folder = tmp_path / "pg"
    settings = settings_for(folder, actions_data.write(folder / "sources"), **{
        **OVERRIDES, "warehouse.kind": "postgres", "warehouse.schema_prefix": postgres_prefix})
    load_and_build(settings, datetime(2026, 9, 28, tzinfo=SHANGHAI))
    run_nights(settings, actions_data.FIRST_MONDAY, actions_data.LAST_DAY)
    on_postgres, on_duckdb = snapshot(settings), snapshot(tracked)
    for name, rows in on_duckdb.items():
        differing = [(a, b) for a, b in zip(on_postgres[name], rows, strict=False) if a != b]
        if differing or len(on_postgres[name]) != len(rows):
            pytest.fail(f"{name}: PostgreSQL vs DuckDB {differing[:2]!r}")
