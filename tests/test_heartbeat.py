"""The nightly's heartbeat (issue #27): a scheduler that stopped running the nightly, or
a nightly that no longer parses, leaves no failed task to alert on. Its checks' newest
run is the heartbeat; when it is older than schedule.heartbeat_max_age_hours the data
team is alerted once, by the report DAGs' scheduled runs and by `servicepulse heartbeat`
(exit 1) from outside Airflow."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta
from email import policy

from servicepulse.cli import main
from servicepulse.heartbeat import check_heartbeat
from servicepulse.quality.runner import CheckResult, QualityReport, store_results
from servicepulse.warehouse import connected
from tests.conftest import settings_for

DATA_TEAM = "data.team@example.com"


def _alerts(settings) -> list[email.message.EmailMessage]:
    folder = settings.output_path / "outbox" / "alerts"
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted(folder.glob("*.eml"))] if folder.exists() else []


def _a_night_checked(settings) -> datetime:
    before = datetime.now(UTC)
    report = QualityReport("night-1", settings.output_path / "r.json", [CheckResult(
        "raw_tickets", "ticket_id_unique", "critical", True, 0, None, [])],
        ("2026-11-22T00:00:00+08:00", "2026-11-23T00:00:00+08:00"), "raw")
    with connected(settings) as warehouse:
        store_results(settings, warehouse, report)
    return before


def test_a_nightly_that_never_ran_is_reported_and_alerted_once(tmp_path, capsys):
    settings = settings_for(tmp_path, tmp_path / "sources", **{
        "delivery.data_team": [DATA_TEAM]})
    assert main(["heartbeat", "--config", str(settings.config_file)]) == 1
    printed = capsys.readouterr().out
    assert printed.startswith("STALE: servicepulse_nightly has never checked any data")
    (alert,) = _alerts(settings)
    assert alert["To"] == DATA_TEAM and "is not running" in alert["Subject"]
    assert "scheduler and DAG processor" in alert.get_body(("plain",)).get_content()
    assert main(["heartbeat", "--config", str(settings.config_file)]) == 1
    assert len(_alerts(settings)) == 1  # the same silence is not alerted twice


def test_the_heartbeat_is_fresh_after_a_night_and_stale_after_its_limit(tmp_path, capsys):
    settings = settings_for(tmp_path, tmp_path / "sources", **{
        "delivery.data_team": [DATA_TEAM], "schedule.heartbeat_max_age_hours": 30})
    checked = _a_night_checked(settings)
    assert main(["heartbeat", "--format", "json", "--config",
                 str(settings.config_file)]) == 0
    fresh = json.loads(capsys.readouterr().out)
    assert fresh["fresh"] is True
    assert datetime.fromisoformat(fresh["last_checked_at"]) >= checked
    assert _alerts(settings) == []
    # 31 hours later with no new check: stale, alerted once for this last heartbeat.
    later = datetime.now(UTC) + timedelta(hours=31)
    stale = check_heartbeat(settings, later)
    assert stale["fresh"] is False and "last checked data 31.0 h ago" in stale["summary"]
    assert stale["alert"] == {"email": "sent"}
    assert check_heartbeat(settings, later + timedelta(hours=1))["alert"] == {
        "email": "duplicate"}
    assert len(_alerts(settings)) == 1
