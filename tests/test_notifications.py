"""Every failure reaches a person, through every configured channel, once: a real SMTP
server (aiosmtpd) and real local webhook servers that check each vendor's payload and
signature (WeCom, DingTalk signed, Feishu signed, Slack, Teams, generic JSON)."""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from servicepulse import pipeline
from servicepulse.airflow_support import run_step
from servicepulse.delivery.alert import Alert
from servicepulse.delivery.notify import notify, retry_pending, task_failure_callback
from servicepulse.quality.runner import CheckResult, QualityReport
from servicepulse.transform import TransformError
from tests.conftest import settings_for
from tests.kpi_harness import SHANGHAI
from tests.smtp_server import Catcher, SmtpServer
from tests.webhook_servers import WebhookServer

DATA_TEAM = "data@example.com"
VENDORS = ("wecom", "dingtalk", "feishu", "slack", "teams", "generic")
SECRETS = {"dingtalk": "SECdingtalk-secret", "feishu": "feishu-secret"}
START, END = datetime(2026, 11, 23, tzinfo=SHANGHAI), datetime(2026, 11, 24, tzinfo=SHANGHAI)
LOG_URL = "http://airflow.local/dags/servicepulse_nightly/runs/r1/tasks/t/logs"


@pytest.fixture
def world(tmp_path, monkeypatch):
    """SMTP + one webhook server per vendor, all channels in the data team's audience."""
    with ExitStack() as stack:
        catcher = Catcher()
        smtp = stack.enter_context(SmtpServer(catcher))
        hooks = {v: stack.enter_context(WebhookServer(v, SECRETS.get(v))) for v in VENDORS}
        for vendor, hook in hooks.items():
            monkeypatch.setenv(f"SERVICEPULSE_WEBHOOK_{vendor.upper()}_URL", hook.url)
            if vendor in SECRETS:
                monkeypatch.setenv(f"SERVICEPULSE_WEBHOOK_{vendor.upper()}_SECRET",
                                   SECRETS[vendor])
        sources = tmp_path / "sources"
        sources.mkdir()
        settings = settings_for(tmp_path, sources, **{
            "delivery.transport": "smtp",
            "delivery.smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                              "connection_id": None, "timeout_seconds": 5,
                              "max_attempts": 1, "retry_backoff_seconds": 0},
            "delivery.data_team": [DATA_TEAM],
            "notifications": {
                "channels": {v: {"kind": v} for v in VENDORS} | {"mail": {"kind": "email"}},
                "audiences": {"data_team": ["mail", *VENDORS]},
                "retry_backoff_seconds": 0.05}})
        monkeypatch.setenv("SERVICEPULSE_CONFIG", str(settings.config_file))
        yield SimpleNamespace(settings=settings, catcher=catcher, hooks=hooks)


def counts(world) -> dict[str, int]:
    return {"mail": len(world.catcher.messages_to(DATA_TEAM)),
            **{v: len(h.received) for v, h in world.hooks.items()}}


def context(task_id: str, error: BaseException, start=START, end=END):
    ti = SimpleNamespace(dag_id="servicepulse_nightly", task_id=task_id, log_url=LOG_URL)
    return {"ti": ti, "exception": error, "data_interval_start": start,
            "data_interval_end": end}


def fail(monkeypatch, task_id, step, *args):
    """Run a step as the DAG task does, inside the task's Airflow context."""
    from servicepulse import airflow_support

    monkeypatch.setattr(airflow_support, "_task_context",
                        lambda: context(task_id, None))
    with pytest.raises(Exception) as raised:
        run_step(step, *args)
    return raised.value


def text_of(world, vendor: str) -> str:
    return json.dumps(world.hooks[vendor].received[-1], ensure_ascii=False)


def test_a_missing_source_file_alerts_once_per_channel(world, monkeypatch):
    error = fail(monkeypatch, "load_crm_tickets", pipeline.load, "crm_tickets", START, END)
    assert isinstance(error, AirflowFailException)
    task_failure_callback(context("load_crm_tickets", error))  # after the failed task
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 1)
    (mail,) = world.catcher.messages_to(DATA_TEAM)
    assert "load crm_tickets failed for 2026-11-23T00:00:00+08:00" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    assert "Next step:" in body and "not retried" in body
    generic = world.hooks["generic"].received[0]
    assert generic["interval"].startswith("2026-11-23T00:00:00+08:00")
    assert generic["first_error"] and generic["next_step"]
    # A second failure of the same interval (the task cleared and failing again).
    error = fail(monkeypatch, "load_crm_tickets", pipeline.load, "crm_tickets", START, END)
    task_failure_callback(context("load_crm_tickets", error))
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 1)


def test_a_dbt_failure_alerts_once_after_the_last_retry(world, monkeypatch):
    def transform(*args, **kwargs):
        raise TransformError("dbt build failed: Compilation Error in model kpi_weekly\n"
                             "  more detail")

    error = fail(monkeypatch, "dbt_build", transform)
    assert isinstance(error, TransformError)  # retryable: run_step leaves it to retries
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 0)
    task_failure_callback(context("dbt_build", error))
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 1)
    for vendor in VENDORS:
        assert "Compilation Error in model kpi_weekly" in text_of(world, vendor)
        assert LOG_URL in text_of(world, vendor)
    task_failure_callback(context("dbt_build", error))  # the same failure again
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 1)
    # Another interval is another failure: it alerts again.
    task_failure_callback(context("dbt_build", error, start=END,
                                  end=datetime(2026, 11, 25, tzinfo=SHANGHAI)))
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 2)


def test_a_failed_critical_check_alerts_once_per_channel(world, monkeypatch, tmp_path):
    report = QualityReport("run-1", tmp_path / "result.json", [CheckResult(
        "raw_tickets", "ticket_id_unique", "critical", False, 3, None, [])],
        ("2026-11-23", "2026-11-24"), "raw")
    from servicepulse.quality import runner

    monkeypatch.setattr(runner, "run_checks", lambda *a, **k: report)
    monkeypatch.setattr(runner, "store_results", lambda *a, **k: None)
    monkeypatch.setattr("servicepulse.quality.overview.write_overview",
                        lambda *a, **k: "overview")
    error = fail(monkeypatch, "check_raw_data", pipeline.check_quality, "run-1", START, END, "raw")
    assert isinstance(error, AirflowFailException)
    task_failure_callback(context("check_raw_data", error))
    # The check's own alert and the task's failure alert: each exactly once per channel.
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 2)
    assert "raw_tickets.ticket_id_unique" in text_of(world, "wecom")
    error = fail(monkeypatch, "check_raw_data", pipeline.check_quality, "run-2", START, END, "raw")
    task_failure_callback(context("check_raw_data", error))
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 2)


def test_rate_limited_webhooks_are_retried(world):
    for vendor in VENDORS:
        world.hooks[vendor].rate_limit_next = 2  # 429 (Retry-After) or the vendor's errcode
    delivered = notify(world.settings, Alert("task_failure", "load audits", "2026-11-23",
                                             "SourceError: boom"))
    assert all(delivered.outcomes[v] == "sent" for v in VENDORS)
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 1)
    assert all(world.hooks[v].requests == 3 for v in VENDORS)


def test_a_bad_signature_is_logged_kept_pending_and_sent_later(world, monkeypatch, caplog):
    monkeypatch.setenv("SERVICEPULSE_WEBHOOK_DINGTALK_SECRET", "wrong")
    monkeypatch.setenv("SERVICEPULSE_WEBHOOK_FEISHU_SECRET", "wrong")
    alert = Alert("task_failure", "load audits", "2026-11-23", "SourceError: boom")
    delivered = notify(world.settings, alert)
    assert delivered.outcomes["dingtalk"].startswith("pending") and \
        "310000" in delivered.outcomes["dingtalk"]
    assert "19021" in delivered.outcomes["feishu"]
    assert "ALERT NOT SENT through dingtalk" in caplog.text
    assert len(world.hooks["dingtalk"].received) == 0
    state = json.loads((Path(world.settings.output_path) / "notifications" /
                        "state.json").read_text())
    assert {p["channel"] for p in state["pending"]} == {"dingtalk", "feishu"}
    monkeypatch.setenv("SERVICEPULSE_WEBHOOK_DINGTALK_SECRET", SECRETS["dingtalk"])
    monkeypatch.setenv("SERVICEPULSE_WEBHOOK_FEISHU_SECRET", SECRETS["feishu"])
    assert retry_pending(world.settings) == 0
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 1)
    notify(world.settings, alert)  # the same alert again: nobody hears it twice
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 1)


class _Marts:
    """The KPI mart rows kpi_rows reads, as the warehouse would return them."""

    def __init__(self, rows):
        self.rows = rows

    def fetch_frame(self, sql, params=None):
        import pandas as pd

        return pd.DataFrame(self.rows)


def _kpi_row(kpi_id, name_zh, name_en, value, unit, target, status, section="headline",
             reason=None):
    return {"period_start": datetime(2026, 11, 16).date(), "dimension_value": None,
            "kpi_id": kpi_id, "display_order": 1, "name_zh": name_zh, "name_en": name_en,
            "unit": unit, "direction": "higher", "report_section": section,
            "numerator": None, "denominator": None, "value": value, "target": target,
            "status": status, "previous_value": None, "not_measured_reason": reason}


def test_report_out_and_delayed_reach_the_reports_audience_once(world):
    from servicepulse.delivery.deliver import DeliveryResult
    from servicepulse.kpis import Period
    from servicepulse.reports import notices

    settings = world.settings.model_copy(update={
        "notifications": world.settings.notifications.model_copy(update={
            "audiences": {"data_team": ["mail"], "reports": ["wecom", "feishu"]}})})
    period = Period.parse("2026-W47")
    marts = _Marts([
        _kpi_row("FCR", "首次解决率", "First-contact resolution", 0.725, "fraction", 0.7,
                 "green"),
        _kpi_row("CSAT", "满意度", "Satisfaction", None, "points", 4.5, None,
                 reason="no survey source"),
        _kpi_row("TICKETS", "工单量", "Tickets", 1200, "count", None, None, section="volume")])
    headline = notices.headline_lines(settings, marts, period)
    assert headline == (
        "首次解决率 First-contact resolution: 72.5% (On target / 达标, Target 70.0%)",
        "满意度 Satisfaction: n/a — not measured (Not measured / 未测量, Target 4.5 pts)")
    out = notices.report_out("weekly", period, DeliveryResult("weekly", period.label), headline)
    assert notify(settings, out).outcomes == {"wecom": "sent", "feishu": "sent"}
    assert notify(settings, out).outcomes == {"wecom": "duplicate", "feishu": "duplicate"}
    assert "首次解决率 First-contact resolution: 72.5% (On target" in text_of(world, "wecom")
    delayed = notices.report_delayed("weekly", period, "the mart checks failed")
    notify(settings, delayed)
    assert "delayed" in text_of(world, "feishu") and "the mart checks failed" in \
        text_of(world, "feishu")
    # Readers' channels only: the data team's mail is not told a report is out.
    assert counts(world)["mail"] == 0 and len(world.hooks["wecom"].received) == 2


def test_a_deployment_refuses_settings_where_failures_reach_nobody(tmp_path):
    from servicepulse.errors import UserError
    from servicepulse.settings import load_settings
    from tests.conftest import write_config

    smtp = {"delivery.transport": "smtp", "delivery.smtp": {"host": "mail", "port": 25}}
    with pytest.raises(UserError) as refused:
        load_settings(write_config(tmp_path / "a", tmp_path, **smtp), environ={})
    assert "delivery.data_team is empty" in str(refused.value)
    # A chat channel for the data team is a person too; an undefined channel is refused.
    chat = {"notifications": {"channels": {"ops": {"kind": "wecom"}},
                              "audiences": {"data_team": ["ops"]}}}
    assert load_settings(write_config(tmp_path / "b", tmp_path, **smtp, **chat),
                         environ={}).notifications.audiences["data_team"] == ["ops"]
    typo = {"notifications": {"audiences": {"data_team": ["opps"]}}}
    with pytest.raises(UserError, match="opps, not defined under notifications.channels"):
        load_settings(write_config(tmp_path / "c", tmp_path, **typo), environ={})
    # The embedded default writes its alerts to the outbox: an empty data team is allowed.
    assert load_settings(write_config(tmp_path / "d", tmp_path), environ={})


def test_a_stuck_night_alerts_once_through_the_deadline_callback(world):
    import asyncio

    from servicepulse.delivery.notify import nightly_deadline_missed

    # The simple context Airflow's triggerer passes: the DAG run as its API's JSON.
    run = {"dag_id": "servicepulse_nightly", "run_id": "scheduled__2026-11-23",
           "state": "running", "data_interval_start": "2026-11-23T00:00:00+08:00",
           "data_interval_end": "2026-11-24T00:00:00+08:00"}
    asyncio.run(nightly_deadline_missed(context={"dag_run": run}, hours=6))
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 1)
    assert "has not finished 6 h after it was queued (state: running)" in \
        text_of(world, "slack")
    assert "2026-11-23T00:00:00+08:00 – 2026-11-24T00:00:00+08:00" in text_of(world, "slack")
    asyncio.run(nightly_deadline_missed(context={"dag_run": run}, hours=6))
    assert counts(world) == dict.fromkeys(["mail", *VENDORS], 1)
