"""Exactly-once means never lost either: sends under real faults.

Each case runs a real sending process against a real SMTP server on loopback and
breaks something: the process is killed (SIGKILL) while the server holds it before
the hand-over (at RCPT) or during it (at DATA); the outbox cannot be written; the
server drops the line before the message. Afterwards the next run must leave every
recipient with exactly one message, or say precisely which one is in doubt.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from servicepulse.delivery import ledger
from servicepulse.delivery.deliver import DeliveryFailed, DeliveryIncomplete, deliver
from servicepulse.settings import ConfigError, load_settings
from servicepulse.warehouse import connected
from tests.conftest import settings_for, write_config
from tests.faults.disks import fill, small_file_system
from tests.smtp_server import Catcher, SmtpServer
from tests.test_delivery import DATA_TEAM, PERIOD, RECIPIENTS, envelopes, smtp_settings

ROOT = Path(__file__).resolve().parents[2]


def _publish(settings, run_id="run"):
    with connected(settings) as warehouse:
        return deliver(settings, warehouse, "weekly", PERIOD, envelopes(), run_id=run_id)


def _rows(settings) -> dict[str, dict]:
    with connected(settings) as warehouse:
        return {row["recipient"]: row for row in ledger.ledger_rows(settings, warehouse)}


def publish_in_child(config_file: str) -> None:
    """The sending process the tests kill (run as `python -c`)."""
    _publish(load_settings(config_file, environ={}), run_id="doomed")


def _start_child(settings) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", ("import sys; from tests.faults.test_publish_faults import "
         "publish_in_child; publish_in_child(sys.argv[1])"), str(settings.config_file)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_when_stalled(child: subprocess.Popen, catcher: Catcher) -> None:
    assert catcher.stalled.wait(60), child.communicate(timeout=5)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert child.returncode == -signal.SIGKILL


def test_killed_before_the_hand_over_is_sent_by_the_next_run_at_once(tmp_path):
    """The server holds the client at RCPT for the second recipient: nothing of that
    message was handed over when the process dies. The next run (long before the
    in-doubt time) takes the claim over and sends it: one message each."""
    catcher = Catcher(stall_at_rcpt={RECIPIENTS[1]})
    with SmtpServer(catcher) as server:
        settings = smtp_settings(tmp_path, server.port)
        assert settings.delivery.in_doubt_after_minutes == 30
        child = _start_child(settings)
        _kill_when_stalled(child, catcher)
        rows = _rows(settings)
        assert rows[RECIPIENTS[0]]["status"] == "sent"
        assert rows[RECIPIENTS[1]]["status"] == "sending"
        assert rows[RECIPIENTS[1]]["handover_started_at"] is None
        assert str(child.pid) in rows[RECIPIENTS[1]]["worker"]

        catcher.stall_at_rcpt.clear()
        result = _publish(settings, run_id="next")
        assert result.summary() == "1 already_sent, 2 sent"  # the third was never claimed
        rows = _rows(settings)
        assert {r["status"] for r in rows.values()} == {"sent"}
        taken_over = rows[RECIPIENTS[1]]
        assert taken_over["attempts"] == 2 and taken_over["claimed_by"].startswith("next/")
    assert catcher.delivered() == {address: 1 for address in RECIPIENTS}


def test_killed_during_the_hand_over_is_in_doubt_at_once_and_not_resent(tmp_path):
    """The server holds the client after it sent the message (at DATA): the message
    may have arrived. The next run says so at once, names the hand-over, and does not
    send it again."""
    catcher = Catcher(stall_at_data={RECIPIENTS[0]})
    with SmtpServer(catcher) as server:
        settings = smtp_settings(tmp_path, server.port)
        child = _start_child(settings)
        _kill_when_stalled(child, catcher)
        assert _rows(settings)[RECIPIENTS[0]]["handover_started_at"] is not None

        catcher.stall_at_data.clear()
        with pytest.raises(DeliveryFailed, match=f"{RECIPIENTS[0]}: in_doubt: claimed by "
                                                 "doomed/.*handed over to the mail server"):
            _publish(settings, run_id="next")
        rows = _rows(settings)
        assert rows[RECIPIENTS[0]]["status"] == "in_doubt"
        assert {rows[a]["status"] for a in RECIPIENTS[1:]} == {"sent"}
    # The stalled message never completed: the server counted none for it; the data
    # team was told of the in-doubt send, once.
    assert catcher.delivered() == {RECIPIENTS[1]: 1, RECIPIENTS[2]: 1, DATA_TEAM: 1}


def test_an_outbox_that_cannot_be_written_returns_the_send_to_retry_in_the_same_run(tmp_path):
    settings = settings_for(tmp_path, tmp_path / "sources")
    blocked = settings.output_path / "outbox" / "weekly"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the outbox folder must go")
    with pytest.raises(DeliveryIncomplete, match="before the hand-over"):
        _publish(settings)
    assert {r["status"] for r in _rows(settings).values()} == {"retry"}
    blocked.unlink()
    assert _publish(settings, run_id="next").summary() == "3 sent"
    outbox = sorted(p.name for p in (settings.output_path / "outbox").rglob("*.eml"))
    assert outbox == sorted(f"{address}.eml" for address in RECIPIENTS)


@pytest.fixture
def full_outbox(tmp_path):
    """The outbox on a 1 MB file system that is already full."""
    with small_file_system(tmp_path / "output" / "outbox", "1m") as outbox:
        yield outbox, fill(outbox / "filler")


def test_a_full_disk_while_writing_the_message_is_a_retry_not_a_lost_send(tmp_path,
                                                                          full_outbox):
    outbox, filler = full_outbox
    settings = settings_for(tmp_path, tmp_path / "sources")
    with pytest.raises(DeliveryIncomplete, match="No space left on device"):
        _publish(settings)
    assert {r["status"] for r in _rows(settings).values()} == {"retry"}
    assert not list(outbox.rglob("*.tmp"))  # no half-written message left behind
    filler.unlink()
    assert _publish(settings, run_id="next").summary() == "3 sent"


def test_a_server_that_drops_the_line_before_the_message_is_retried_and_sends_once(tmp_path):
    catcher = Catcher(drop_before_data={RECIPIENTS[2]: 1})
    with SmtpServer(catcher) as server:
        settings = smtp_settings(tmp_path, server.port)
        assert _publish(settings).summary() == "3 sent"
    assert catcher.rcpt_attempts[RECIPIENTS[2]] == 2
    assert catcher.delivered() == {address: 1 for address in RECIPIENTS}


def test_a_line_break_in_a_recipient_is_refused_when_the_settings_load(tmp_path):
    config = write_config(tmp_path, tmp_path / "sources", **{"delivery.weekly": [
        {"email": "ops@example.com", "name": "运营总监"},
        {"email": "b@example.com", "name": "B\r\nBcc: everyone@example.com"}]})
    with pytest.raises(ConfigError, match=r"delivery\.weekly\.1\.name: .*line break"):
        load_settings(config, environ={})
