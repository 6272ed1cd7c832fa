"""A failure no retry will mend reaches the data team at once, through the configured
transport, naming what failed, for which interval, and why."""

from __future__ import annotations

import email
from datetime import datetime
from email import policy

import pytest
from airflow.sdk.exceptions import AirflowFailException

from servicepulse.airflow_support import run_step
from servicepulse.load import SourceError
from tests.conftest import settings_for
from tests.kpi_harness import SHANGHAI


def load(source, start, end=None):
    raise SourceError(source, "/drops/tickets.csv", "field(s) not delivered: priority",
                      line=1, column="priority")


def test_a_permanent_failure_fails_the_task_once_and_alerts_the_data_team(tmp_path,
                                                                          monkeypatch):
    settings = settings_for(tmp_path, tmp_path, **{"delivery.data_team": ["data@example.com"]})
    monkeypatch.setenv("SERVICEPULSE_CONFIG", str(settings.config_file))
    start, end = datetime(2026, 11, 23, tzinfo=SHANGHAI), datetime(2026, 11, 24, tzinfo=SHANGHAI)
    with pytest.raises(AirflowFailException, match="SourceError"):
        run_step(load, "crm_tickets", start, end)
    (alert,) = (settings.output_path / "outbox" / "alerts").glob("*.eml")
    message = email.message_from_bytes(alert.read_bytes(), policy=policy.default)
    assert message["To"] == "data@example.com"
    assert "load crm_tickets failed for 2026-11-23T00:00:00+08:00" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert "/drops/tickets.csv, row 1, column 'priority'" in body and "not retried" in body


def test_without_a_data_team_the_task_still_fails_with_its_own_error(tmp_path, monkeypatch):
    settings = settings_for(tmp_path, tmp_path)
    monkeypatch.setenv("SERVICEPULSE_CONFIG", str(settings.config_file))
    with pytest.raises(AirflowFailException, match="priority"):
        run_step(load, "crm_tickets", datetime(2026, 11, 23, tzinfo=SHANGHAI))
    assert not (settings.output_path / "outbox").exists()
