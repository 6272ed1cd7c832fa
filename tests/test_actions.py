"""The rectification loop on hand-made data (tests/actions_data.py): findings open
actions, people work them, the data verifies or reopens them; re-running nights
changes nothing; the same on PostgreSQL; the command line's JSON."""

from __future__ import annotations

import json
import math
import shutil
from datetime import date, datetime, timedelta

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
    # Each problem is written in both languages: readers see theirs.
    assert breach["problem_zh"] == ("投诉 PY1（紧急，账单费用）：分类环节应于 2026-08-05 10:30 "
                                    "前完成，超时 60 分钟完成")
    assert first["problem_zh"] == ("响应及时率（RESP_SLA）在部门 d_x 连续 2 周未达标："
                                   "2026-08-10 起的一周为 50.0 %")
    audit = actions["audit:AU1"]
    assert audit["problem_zh"] == "流程审核 AU1（坐席 A_d_x，2026-08-12）：得分 20.0/30，低于 24.0"
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
        # A department head's change is refused once the action is another department's.
        with pytest.raises(store.ActionChangeRefused, match="another department"):
            store.record_work(tracked, warehouse, actions["audit:AU1"]["action_id"],
                              "head.y", "people", "x", "y", departments=["d_y"])
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


def test_closure_rate_and_verified_share_in_the_marts(tracked):
    """marts.kpi_corrective_actions over the eight weeks, by hand: due in August are
    the breach (12 Aug, d_y, open), the audit (19 Aug, d_x, open) and d_x's first RESP_SLA
    action (24 Aug, done 19 Aug, verified); in September d_y's (reopened, due again 20 Sep)
    and d_x's second (29 Sep, open)."""
    with connected(tracked) as warehouse:
        frame = warehouse.fetch_frame(
            'select period_grain, period_start, dimension, dimension_value, actions_due, '
            'actions_done_by_due, actions_verified, closure_rate, verified_share '
            'from "marts"."kpi_corrective_actions" order by 1, 2, 3, 4')
    rows = {(r.period_grain, str(r.period_start)[:10], r.dimension_value):
            (r.actions_due, r.actions_done_by_due, r.actions_verified, round(r.closure_rate, 4),
             None if pd.isna(r.verified_share) else r.verified_share)
            for r in frame.itertuples(index=False)}
    assert rows[("month", "2026-08-01", "all")] == (3, 1, 1, round(1 / 3, 4), 1.0)
    assert rows[("month", "2026-08-01", "d_x")] == (2, 1, 1, 0.5, 1.0)
    assert rows[("month", "2026-08-01", "d_y")] == (1, 0, 0, 0.0, None)
    # A reopened action is not closed, though it was done before its first deadline.
    assert rows[("month", "2026-09-01", "all")] == (2, 0, 0, 0.0, None)
    # Due Sunday 20 September (a working day in 2026): the week of 14 September.
    assert rows[("week", "2026-09-14", "d_y")] == (1, 0, 0, 0.0, None)
    assert rows[("week", "2026-08-24", "d_x")] == (1, 1, 1, 1.0, 1.0)
    assert len(rows) == 16


def _pdf_text(settings, kind: str, period: str, locale: str, folder, department=None) -> str:
    import subprocess

    arguments = ["report", kind, "--period", period, "--locale", locale, "--out",
                 str(folder), "--config", str(settings.config_file)]
    assert main(arguments + (["--department", department] if department else [])) == 0
    pdf = next(folder.glob("*.pdf"))
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


def test_the_reports_carry_the_loop(tracked, tmp_path):
    """Week 38 (14–20 September), data as of Thursday 24 September: overdue are the
    breach (due 12 Aug: 43 days), the audit (19 Aug: 36 days) and d_y's reopened action
    (due 20 Sep: 4 days); reopened this week: d_y's; none opened (d_x's second one opens
    on the 21st)."""
    weekly = _pdf_text(tracked, "weekly", "2026-W38", "zh-CN", tmp_path / "w")
    section = weekly[weekly.index("整改跟踪"):]
    assert "本期下发 0；已逾期 3；已完成，待验证 0；验证通过 0；重新整改 1" in section
    assert "逾期 43 天" in section and "逾期 36 天" in section and "逾期 4 天" in section
    english = _pdf_text(tracked, "weekly", "2026-W38", "en", tmp_path / "e")
    assert "Opened 0; Overdue 3; Done, awaiting verification 0; Verified 0; Reopened 1" in \
        english[english.index("Corrective actions"):]
    # d_x's slice: its audit is overdue; nothing of d_y.
    mine = _pdf_text(tracked, "weekly", "2026-W38", "en", tmp_path / "x", department="d_x")
    part = mine[mine.index("Corrective actions"):]
    assert "Overdue 1;" in part and "d_y" not in part
    # August: 1 of 3 due closed by its deadline; 1 of 1 verified; d_y has 2 overdue.
    monthly = _pdf_text(tracked, "monthly", "2026-08", "en", tmp_path / "m")
    closure = monthly[monthly.rindex("Rectification closure"):]
    assert "33.3%" in closure and "1 of 3 due actions closed by their deadline" in closure
    assert "100.0%" in closure and "1 of 1 closed actions verified by the data" in closure
    most = closure[closure.index("Departments with the most overdue actions"):].split()
    assert most[most.index("d_y") + 1] == "2" and most[most.index("d_x") + 1] == "1"


def _outbox(settings) -> dict[str, str]:
    from email import policy
    from email.parser import BytesParser

    found = {}
    for path in sorted((settings.output_path / "outbox").glob("action_*/*/*.eml")):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        found[f"{path.parent.parent.name}/{path.parent.name}/{path.stem}"] = message
    return found


def test_owners_get_a_notice_and_a_reminder_once(tracked):
    """The night of Sunday 20 September (data through the 21st): d_x's new action opened
    on the 21st (notice to head.x, in Chinese); d_y's was reopened on the 14th (a new
    notice to head.y, in English) and is due on the 20th (a reminder). The breach and
    the audit fell due in August, before the night's 7 days: no mail about them."""
    from servicepulse.pipeline import send_action_notices, track_actions

    def night(day: date) -> dict:
        start = datetime.combine(day, datetime.min.time(), SHANGHAI)
        track_actions(start, start + timedelta(days=1), tracked)
        return send_action_notices(start, start + timedelta(days=1), tracked)

    assert night(date(2026, 9, 20)) == {"sent": 3}
    with connected(tracked) as warehouse:
        x = store.unclosed_action_of(tracked, warehouse, X_SUBJECT)
        y = store.unclosed_action_of(tracked, warehouse, Y_SUBJECT)
    sent = _outbox(tracked)
    # Each notice is keyed by the event it announces: x's opening (its history's event 1),
    # y's reopening (event 4, after opened, analysed, done).
    assert set(sent) == {f"action_notice/{x}.event-1/head.x@example.com",
                         f"action_notice/{y}.event-4/head.y@example.com",
                         f"action_reminder/{y}@2026-09-20/head.y@example.com"}
    notice = sent[f"action_notice/{x}.event-1/head.x@example.com"]
    assert notice["Subject"] == f"整改通知书 {x}：指标未达标 · 响应及时率，整改期限 2026-09-29"
    body = notice.get_body(("plain",)).get_content().splitlines()
    for line in ("检查日期: 2026-09-21", "检查标准: RESP_SLA ≥ 98.0 %", "检查结果: 不达标",
                 "责任部门: d_x", "整改期限: 2026-09-29", "验证结果: 待验证（整改完成后由数据验证）",
                 f"打开整改项： https://quality.example.com/actions/{x}"):
        assert line in body, line
    # A reopened action's notice is dated by the reopening (the check that failed).
    again = sent[f"action_notice/{y}.event-4/head.y@example.com"]
    assert "Date: 2026-09-14" in again.get_body(("plain",)).get_content().splitlines()
    reminder = sent[f"action_reminder/{y}@2026-09-20/head.y@example.com"]
    assert reminder["Subject"].startswith(f"Due today or overdue: {y}")

    # Again: nothing new (the send ledger); an extended deadline gets its own reminder;
    # a sent notice does not change when its action does (no "report changed" alert).
    assert night(date(2026, 9, 20)) == {"already_sent": 3}
    with connected(tracked) as warehouse:
        store.extend(tracked, warehouse, y, "quality", date(2026, 9, 24), "rota change")
        store.extend(tracked, warehouse, x, "quality", date(2026, 10, 9), "holiday")
        store.record_work(tracked, warehouse, x, "head.x", "method", "排班", "调整排班")
    assert night(date(2026, 9, 23)) == {"sent": 1, "already_sent": 1}
    assert f"action_reminder/{y}@2026-09-24/head.y@example.com" in _outbox(tracked)
    # Reassigned to d_y: the new owner gets a notice of the reassignment.
    with connected(tracked) as warehouse:
        store.reassign(tracked, warehouse, x, "quality", "d_y", "head.y", "workload",
                       at=datetime(2026, 9, 22, 15, tzinfo=SHANGHAI))
    assert night(date(2026, 9, 23)) == {"sent": 1, "already_sent": 1}
    moved = [key for key in _outbox(tracked) if key.startswith(f"action_notice/{x}.event-")
             and key.endswith("head.y@example.com")]
    assert len(moved) == 1
