"""Exactly-once delivery against a real SMTP server on loopback.

Every assertion counts what the server accepted per recipient: retries, re-runs,
two workers at once and a worker killed between the server's accept and the ledger
write must never make it 2; refused mailboxes are not retried; unknown outcomes are
reported, not re-sent.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from servicepulse.delivery import ledger
from servicepulse.delivery.deliver import (
    DeliveryFailed,
    DeliveryIncomplete,
    Envelope,
    deliver,
)
from servicepulse.delivery.outbox import Attachment
from servicepulse.warehouse import connected
from tests.conftest import settings_for
from tests.smtp_server import Catcher, SmtpServer, free_port, self_signed_certificate

PERIOD = "2026-W47"
DATA_TEAM = "data.team@example.com"
RECIPIENTS = ("ops@example.com", "manager@example.com", "head.a@example.com")


def envelopes(text: str = "Your weekly report.") -> list[Envelope]:
    pdf = b"%PDF-1.7 weekly " + text.encode()
    return [Envelope(address, address.split("@")[0], f"[ServicePulse] Weekly {PERIOD}", text,
                     f"<p>{text}</p>", Attachment(f"weekly-{PERIOD}.pdf", pdf), "en")
            for address in RECIPIENTS]


def smtp_settings(tmp_path, port: int, **overrides):
    return settings_for(tmp_path, tmp_path / "sources", **{
        "delivery.transport": "smtp",
        "delivery.smtp": {"host": "127.0.0.1", "port": port, "security": "none",
                          "connection_id": None, "timeout_seconds": 5, "max_attempts": 2,
                          "retry_backoff_seconds": 0},
        "delivery.data_team": [DATA_TEAM],
        **overrides})


def publish(settings, items=None, run_id="run", **kwargs):
    with connected(settings) as warehouse:
        return deliver(settings, warehouse, "weekly", PERIOD, items or envelopes(),
                       run_id=run_id, **kwargs)


def statuses(settings) -> dict[tuple[str, int], str]:
    with connected(settings) as warehouse:
        return {(r["recipient"], r["sequence"]): r["status"]
                for r in ledger.ledger_rows(settings, warehouse, "weekly", PERIOD)}


def test_each_recipient_gets_one_message_however_often_the_task_runs(tmp_path):
    catcher = Catcher()
    with SmtpServer(catcher) as server:
        settings = smtp_settings(tmp_path, server.port)
        first = publish(settings, run_id="scheduled")
        publish(settings, run_id="retry-of-the-task")
        again = publish(settings, run_id="dag-re-run")
    assert first.summary() == "3 sent"
    assert again.summary() == "3 already_sent"
    assert catcher.delivered() == {address: 1 for address in RECIPIENTS}
    message = catcher.messages_to("head.a@example.com")[0]
    attachment = next(message.iter_attachments())
    assert attachment.get_content() == b"%PDF-1.7 weekly Your weekly report."
    archived = {r["recipient"]: r for r in _rows(settings)}
    assert archived["ops@example.com"]["smtp_reply"].startswith("250 2.0.0 queued as Q")
    path = archived["ops@example.com"]["archive_path"]
    assert Path(path).read_bytes() == b"%PDF-1.7 weekly Your weekly report."
    assert path.endswith(archived["ops@example.com"]["attachment_sha256"] + ".pdf")


def _rows(settings):
    with connected(settings) as warehouse:
        return ledger.ledger_rows(settings, warehouse, "weekly", PERIOD)


def test_temporary_refusals_are_retried_with_backoff_and_a_later_run_sends_the_rest(tmp_path):
    catcher = Catcher()
    catcher.refuse_for_now["ops@example.com"] = 1      # within the attempts
    catcher.refuse_for_now["manager@example.com"] = 3  # beyond them (2 per run)
    with SmtpServer(catcher) as server:
        settings = smtp_settings(tmp_path, server.port)
        with pytest.raises(DeliveryIncomplete, match="manager@example.com: retry: .*451"):
            publish(settings, run_id="try-1")
        assert catcher.delivered() == {"ops@example.com": 1, "head.a@example.com": 1,
                                       DATA_TEAM: 1}
        assert statuses(settings)[("manager@example.com", 0)] == "retry"
        second = publish(settings, run_id="try-2")  # Airflow's retry of the task
    assert {o.recipient: o.status for o in second.outcomes} == {
        "ops@example.com": "already_sent", "manager@example.com": "sent",
        "head.a@example.com": "already_sent"}
    assert catcher.delivered() == {address: 1 for address in RECIPIENTS} | {DATA_TEAM: 1}
    assert catcher.rcpt_attempts["ops@example.com"] == 2
    assert catcher.rcpt_attempts["manager@example.com"] == 4
    rows = {r["recipient"]: r for r in _rows(settings)}
    assert rows["manager@example.com"]["attempts"] == 2  # claimed twice, sent once


def test_a_refused_mailbox_is_not_retried_and_the_data_team_is_told(tmp_path):
    catcher = Catcher(refuse_forever={"manager@example.com": "550 5.1.1 no such user"})
    with SmtpServer(catcher) as server:
        settings = smtp_settings(tmp_path, server.port)
        with pytest.raises(DeliveryFailed, match="manager@example.com: failed: .*550 5.1.1"):
            publish(settings)
        with pytest.raises(DeliveryFailed, match="manager@example.com: failed"):
            publish(settings, run_id="re-run")
    assert catcher.rcpt_attempts["manager@example.com"] == 1
    assert catcher.delivered()["ops@example.com"] == 1
    alerts = catcher.messages_to(DATA_TEAM)
    assert len(alerts) == 2  # once per run, until someone fixes the address
    assert "550 5.1.1 no such user" in alerts[0].get_body(("plain",)).get_content()


def test_unreachable_server_is_a_temporary_failure(tmp_path):
    settings = smtp_settings(tmp_path, free_port())
    with pytest.raises(DeliveryIncomplete, match="ConnectionRefusedError"):
        publish(settings)
    assert set(statuses(settings).values()) == {"retry"}


def test_a_line_lost_after_the_message_was_handed_over_is_in_doubt_not_resent(tmp_path):
    catcher = Catcher(drop_after_data={"manager@example.com"})
    with SmtpServer(catcher) as server:
        settings = smtp_settings(tmp_path, server.port)
        with pytest.raises(DeliveryFailed, match="manager@example.com: in_doubt"):
            publish(settings)
        with pytest.raises(DeliveryFailed, match="in_doubt"):
            publish(settings, run_id="re-run")
    assert catcher.delivered() == {address: 1 for address in RECIPIENTS} | {DATA_TEAM: 2}


def _crash_after_accept(config_file: str) -> None:
    """A worker that dies (no cleanup, no exception handler) right after the SMTP
    server accepted a message, before the ledger records it."""
    from servicepulse.settings import load_settings

    real_mark = ledger.mark

    def mark_then_die(settings, warehouse, entry, sequence, token, status, **kwargs):
        if status == "sent":
            os._exit(17)
        real_mark(settings, warehouse, entry, sequence, token, status, **kwargs)

    ledger.mark = mark_then_die
    publish(load_settings(config_file, environ={}), run_id="doomed")


def test_a_worker_killed_between_accept_and_ledger_is_detected_and_not_resent(tmp_path):
    catcher = Catcher()
    with SmtpServer(catcher) as server:
        settings = smtp_settings(tmp_path, server.port, **{
            "delivery.in_doubt_after_minutes": 0.001})
        worker = multiprocessing.get_context("fork").Process(
            target=_crash_after_accept, args=(str(settings.config_file),))
        worker.start()
        worker.join(60)
        assert worker.exitcode == 17
        assert catcher.delivered() == {"ops@example.com": 1}
        assert statuses(settings)[("ops@example.com", 0)] == "sending"

        with pytest.raises(DeliveryFailed, match="ops@example.com: in_doubt: claimed by doomed"):
            publish(settings, run_id="next-night")
        assert catcher.delivered() == {address: 1 for address in RECIPIENTS} | {DATA_TEAM: 1}
        alert = catcher.messages_to(DATA_TEAM)[0].get_body(("plain",)).get_content()
        assert "ops@example.com: in_doubt" in alert and "Message-ID" in alert

        # The data team finds the Message-ID in the server's log and settles it.
        with connected(settings) as warehouse:
            ledger.settle(settings, warehouse, "weekly", PERIOD, "ops@example.com",
                          delivered=True, note="found in the relay log")
        assert publish(settings, run_id="after-settling").summary() == "3 already_sent"
    assert catcher.delivered()["ops@example.com"] == 1


def test_settling_as_not_delivered_lets_the_next_run_send_it(tmp_path):
    catcher = Catcher(drop_after_data={"ops@example.com"})
    with SmtpServer(catcher) as server:
        settings = smtp_settings(tmp_path, server.port)
        with pytest.raises(DeliveryFailed):
            publish(settings)
        catcher.drop_after_data.clear()
        with connected(settings) as warehouse:
            ledger.settle(settings, warehouse, "weekly", PERIOD, "ops@example.com",
                          delivered=False, note="not in the relay log")
        assert publish(settings, run_id="next").summary() == "2 already_sent, 1 sent"
    assert catcher.delivered()["ops@example.com"] == 2  # the lost one and its replacement


def test_changed_content_is_reported_and_resent_only_on_request(tmp_path):
    catcher = Catcher()
    with SmtpServer(catcher) as server:
        settings = smtp_settings(tmp_path, server.port)
        publish(settings)
        corrected = envelopes("Corrected figures.")
        changed = publish(settings, corrected, run_id="late-data")
        assert changed.summary() == "3 already_sent"
        assert all(o.content_changed for o in changed.outcomes)
        assert "changed after delivery" in catcher.messages_to(DATA_TEAM)[0]["Subject"]
        resent = publish(settings, corrected[:1], run_id="by-hand",
                         resend_reason="corrected survey data")
    assert resent.outcomes[0].sequence == 1
    assert catcher.delivered()["ops@example.com"] == 2
    assert catcher.messages_to("ops@example.com")[1].get_body(("plain",)).get_content() \
        .strip() == "Corrected figures."
    rows = [r for r in _rows(settings) if r["recipient"] == "ops@example.com"]
    assert [(r["sequence"], r["kind"], r["reason"]) for r in rows] == [
        (0, "scheduled", None), (1, "resend", "corrected survey data")]
    assert rows[0]["content_hash"] != rows[1]["content_hash"]


def _deliver_in_process(config_file: str, run_id: str, start, errors: list) -> None:
    from servicepulse.settings import load_settings

    start.wait()
    try:
        publish(load_settings(config_file, environ={}), run_id=run_id)
    except BaseException as exc:
        errors.append(repr(exc))
        raise


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_two_workers_at_once_deliver_once(tmp_path, kind, request):
    """PostgreSQL: two processes (two Celery workers). DuckDB allows one writing process,
    so there the two workers are threads sharing the file."""
    catcher = Catcher(data_delay_seconds=0.5)  # the first worker is still sending
    overrides = {"warehouse.kind": kind}
    if kind == "postgres":
        overrides["warehouse.schema_prefix"] = request.getfixturevalue("postgres_prefix")
    errors: list[str] = []
    with SmtpServer(catcher) as server:
        settings = smtp_settings(tmp_path, server.port, **overrides)
        if kind == "postgres":
            context = multiprocessing.get_context("fork")
            start = context.Event()
            workers = [context.Process(target=_deliver_in_process,
                                       args=(str(settings.config_file), f"worker-{i}", start,
                                             errors))
                       for i in range(2)]
        else:
            start = threading.Event()
            workers = [threading.Thread(target=_deliver_in_process,
                                        args=(str(settings.config_file), f"worker-{i}", start,
                                              errors))
                       for i in range(2)]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(60)
    assert errors == []
    if kind == "postgres":
        assert [worker.exitcode for worker in workers] == [0, 0]
    assert catcher.delivered() == {address: 1 for address in RECIPIENTS}
    assert set(statuses(settings).values()) == {"sent"}


def test_starttls_and_login_from_the_airflow_connection(tmp_path, monkeypatch):
    """The SMTP account lives in an Airflow connection (here given the way a deployment
    may: AIRFLOW_CONN_<ID>); the settings name only its id and the CA to trust."""
    cert, key = self_signed_certificate(tmp_path)
    catcher = Catcher()
    with SmtpServer(catcher, tls_files=(cert, key), logins={"reports": "s3cret!"}) as server:
        settings = smtp_settings(tmp_path, 1, **{"delivery.smtp": {
            "connection_id": "servicepulse_smtp", "ca_file": str(cert), "max_attempts": 1,
            "retry_backoff_seconds": 0, "timeout_seconds": 5}})
        monkeypatch.setenv("AIRFLOW_CONN_SERVICEPULSE_SMTP",
                           f"smtp://reports:s3cret%21@127.0.0.1:{server.port}"
                           "?security=starttls")
        assert publish(settings).summary() == "3 sent"
        assert catcher.logins == ["reports"] * 3
        assert catcher.delivered() == {address: 1 for address in RECIPIENTS}

        monkeypatch.setenv("AIRFLOW_CONN_SERVICEPULSE_SMTP",
                           f"smtp://reports:wrong@127.0.0.1:{server.port}?security=starttls")
        with pytest.raises(DeliveryFailed, match="login failed \\(535"):
            deliver_other_period(settings)


def deliver_other_period(settings):
    with connected(settings) as warehouse:
        return deliver(settings, warehouse, "weekly", "2026-W48", envelopes(), run_id="w48")


def test_an_untrusted_certificate_is_a_permanent_error(tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    catcher = Catcher()
    with SmtpServer(catcher, tls_files=(cert, key)) as server:
        settings = smtp_settings(tmp_path, server.port, **{"delivery.smtp": {
            "host": "127.0.0.1", "port": server.port, "security": "starttls",
            "connection_id": None, "max_attempts": 1}})
        with pytest.raises(DeliveryFailed, match="CERTIFICATE_VERIFY_FAILED.*smtp.ca_file"):
            publish(settings)
    assert catcher.delivered() == {}



def test_a_claim_whose_insert_lost_reads_the_winners_row_once_it_is_there(tmp_path,
                                                                          monkeypatch):
    """Two workers claim one delivery on DuckDB. Under load the second's insert can fail
    on the first's row while that commit is still under way, so the row cannot be read
    yet (a CI run hit it: IndexError). The claim tries again until the row is there and
    does not claim."""
    settings = settings_for(tmp_path, tmp_path / "sources")
    entry = ledger.LedgerEntry("weekly", PERIOD, "ops@example.com", "hash", "<id@example.com>")
    real_insert = ledger._insert_row
    committed = threading.Event()
    with connected(settings) as first, connected(settings) as second:
        ledger.ensure_ledger(settings, first)
        table = ledger.table_name(settings)

        def commit_the_first_claim() -> None:
            real_insert(first, table, entry, 0, "scheduled", "first", None)
            committed.set()

        def losing_until_it_is_committed(warehouse, *arguments):
            if warehouse is second and not committed.is_set():
                raise RuntimeError("TransactionContext Error: Failed to commit: PRIMARY KEY "
                                   "or UNIQUE constraint violation: duplicate key")
            return real_insert(warehouse, *arguments)

        monkeypatch.setattr(ledger, "_insert_row", losing_until_it_is_committed)
        committing = threading.Timer(0.5, commit_the_first_claim)
        committing.start()
        try:
            claim = ledger.claim(settings, second, entry, "second")
        finally:
            committing.join()
    assert committed.is_set()
    assert not claim.won and claim.status == "sending"
    assert claim.previous["claimed_by"] == "first"
