"""Publishing fans out: a report's audiences are rendered and sent by separate work items
(the report DAGs' mapped render_and_send tasks), and two workers running the same items
at the same moment still send every recipient exactly once.

Two real processes each run every work item of the same period, in the same order, so
they render the same audience at the same moment and race for the same ledger claims:
on DuckDB (one writing process per file: the workers take turns at it) and on
PostgreSQL. The finish step then concludes on the items' results; an item whose task
failed for good fails the run and names its recipients."""

from __future__ import annotations

import email
import json
import multiprocessing
from email import policy
from pathlib import Path

import pytest

from servicepulse import pipeline
from servicepulse.delivery.ledger import ledger_rows
from servicepulse.kpis import Period
from servicepulse.publishing import AudiencesUnfinished, plan_audiences
from servicepulse.settings import load_settings
from servicepulse.warehouse import connected
from tests import known_answers
from tests.conftest import settings_for
from tests.kpi_harness import UNTIL, load_and_build

WEEK = Period.parse("2026-W47")
# Six audiences (the organisation and two departments, in both languages); the d_b
# Chinese one has two readers.
RECIPIENTS = [
    {"email": "ops@example.com", "name": "运营总监", "locale": "zh-CN"},
    {"email": "manager@example.com", "name": "Service Manager", "locale": "en"},
    {"email": "head.a@example.com", "name": "A 主管", "locale": "zh-CN", "department": "d_a"},
    {"email": "head.a.en@example.com", "name": "A head", "locale": "en", "department": "d_a"},
    {"email": "head.b@example.com", "name": "B 主管", "locale": "zh-CN", "department": "d_b"},
    {"email": "deputy.b@example.com", "name": "B 副主管", "locale": "zh-CN",
     "department": "d_b"},
    {"email": "head.b.en@example.com", "name": "B head", "locale": "en", "department": "d_b"},
]
ADDRESSES = sorted(r["email"] for r in RECIPIENTS)


def run_every_item(config_file: str, items: list[dict], run_id: str, start, out: str) -> None:
    """A worker (a process of its own): every work item, through the function the mapped
    Airflow task calls; its results are written to ``out``."""
    settings = load_settings(config_file, environ={})
    start.wait(120)
    results = [pipeline.render_and_send(item, run_id=run_id, settings=settings)
               for item in items]
    Path(out).write_text(json.dumps(results))


def _two_workers_at_once(settings, items: list[dict], tmp_path: Path) -> list[list[dict]]:
    context = multiprocessing.get_context("spawn")  # no DuckDB state forked into a child
    start = context.Event()
    outs = [tmp_path / f"worker-{n}.json" for n in range(2)]
    workers = [context.Process(target=run_every_item,
                               args=(str(settings.config_file), items, f"worker-{n}", start,
                                     str(out)))
               for n, out in enumerate(outs)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(300)
    assert [worker.exitcode for worker in workers] == [0, 0]
    return [json.loads(out.read_text()) for out in outs]


def _check_each_recipient_got_one_message(settings, items, results) -> None:
    assert len(items) == 6 and sorted(a for i in items for a in i["recipients"]) == ADDRESSES
    with connected(settings, read_only=True) as warehouse:
        rows = ledger_rows(settings, warehouse, "weekly", WEEK.label)
    assert sorted((r["recipient"], r["sequence"], r["status"]) for r in rows) == \
        [(address, 0, "sent") for address in ADDRESSES]
    outbox = settings.output_path / "outbox" / "weekly" / WEEK.label
    messages = sorted(outbox.glob("*.eml"))
    assert [path.name for path in messages] == sorted(f"{a}.eml" for a in ADDRESSES)
    # Each recipient was sent by one worker; the other found it sent, and the same.
    statuses: dict[str, list[str]] = {}
    for worker in results:
        for result in worker:
            for outcome in result["outcomes"]:
                statuses.setdefault(outcome["recipient"], []).append(outcome["status"])
                assert not outcome["content_changed"], outcome
    assert {address: sorted(found) for address, found in statuses.items()} == \
        {address: ["already_sent", "sent"] for address in ADDRESSES}
    # Every message carries its audience's complete PDF (written whole, never half).
    for path in messages:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        attachment = next(message.iter_attachments())
        pdf = outbox.parents[2] / "reports" / "weekly" / WEEK.label / attachment.get_filename()
        assert attachment.get_content() == pdf.read_bytes()


def test_two_workers_running_the_same_audiences_on_duckdb_send_each_once(
        tmp_path, copy_of_known_answers):
    settings = copy_of_known_answers(tmp_path / "copy", **{"delivery.weekly": RECIPIENTS})
    items = plan_audiences(settings, WEEK)
    results = _two_workers_at_once(settings, items, tmp_path)
    _check_each_recipient_got_one_message(settings, items, results)

    finished = pipeline.finish_report(items, results[0], run_id="worker-0",
                                      settings=settings)
    counts = dict(reversed(part.split(" ")) for part in finished["delivery"].split(", "))
    assert sum(int(n) for n in counts.values()) == len(ADDRESSES)
    assert set(counts) <= {"sent", "already_sent"}
    assert len(finished["reports"]) == 6
    assert (settings.output_path / "archive" / "index.html").exists()


def test_two_workers_running_the_same_audiences_on_postgresql_send_each_once(
        tmp_path, postgres_prefix):
    settings = settings_for(tmp_path, known_answers.write(tmp_path / "sources"), **{
        "warehouse.kind": "postgres", "warehouse.schema_prefix": postgres_prefix,
        "delivery.weekly": RECIPIENTS})
    load_and_build(settings, UNTIL)
    items = plan_audiences(settings, WEEK)
    results = _two_workers_at_once(settings, items, tmp_path)
    _check_each_recipient_got_one_message(settings, items, results)


def test_finish_fails_the_run_for_an_audience_whose_task_failed(tmp_path,
                                                               copy_of_known_answers):
    """The finish step runs whatever the audiences' tasks did. One audience's task failed
    for good: the others' recipients have their report, the failed one's are named in
    the data team's alert (from the ledger), and the run fails without a second alert."""
    settings = copy_of_known_answers(tmp_path / "copy", **{
        "delivery.weekly": RECIPIENTS, "delivery.data_team": ["data.team@example.com"]})
    items = plan_audiences(settings, WEEK)
    failed = next(item for item in items if item["department"] == "d_b"
                  and item["locale"] == "zh-CN")
    results = [pipeline.render_and_send(item, run_id="run", settings=settings)
               for item in items if item is not failed]
    with pytest.raises(AudiencesUnfinished, match="1 of 6 audiences did not finish "
                                                  r"\(d_b zh-CN\)") as raised:
        pipeline.finish_report(items, results, run_id="run", settings=settings)
    assert raised.value.data_team_alerted
    alert = email.message_from_bytes(
        (settings.output_path / "outbox" / "alerts" / f"delivery-weekly-{WEEK.label}.eml")
        .read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
    assert "head.b@example.com: retry: not sent: the task of its audience failed" in alert
    assert "deputy.b@example.com: retry" in alert and "ops@example.com" not in alert

    # The task's retry (or a re-run) sends only what did not go.
    results.append(pipeline.render_and_send(failed, run_id="run", settings=settings))
    finished = pipeline.finish_report(items, results, run_id="run", settings=settings)
    assert finished["delivery"] == "7 sent"


def test_nothing_planned_finishes_at_once_and_a_failed_plan_fails_quietly():
    assert pipeline.finish_report([], [])["skipped"].startswith("nothing to publish")
    with pytest.raises(pipeline.PlanUnfinished) as raised:
        pipeline.finish_report(None, [])
    assert raised.value.data_team_alerted
