"""The DAGs through Airflow (`airflow dags test`, SQLite metadata) on a small generated
data set: nightly load -> dbt -> quality gate, then the weekly and the monthly report
DAGs -> e-mails."""

from __future__ import annotations

import email
import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from email import policy

import pytest
from pypdf import PdfReader

from servicepulse.airflow_runner import (
    PipelineRunError,
    run_monthly_report,
    run_nightly,
    run_weekly_report,
)
from servicepulse.delivery.ledger import ledger_rows
from servicepulse.demo.generate import GenerationSpec, generate
from servicepulse.kpis import Period, kpi_document
from servicepulse.reports.i18n import Messages
from servicepulse.warehouse import connected
from tests.conftest import settings_for

pytestmark = pytest.mark.airflow
SUNDAY = date(2026, 11, 22)  # the run for a Sunday completes ISO week 2026-W47


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    return tmp_path_factory.mktemp("airflow")


def _settings(tmp_path, airflow_home, **overrides):
    sources = tmp_path / "sources"
    # From 1 October: a whole month for the monthly report.
    generate(GenerationSpec(out=sources, start=date(2026, 10, 1), days=53, seed=3,
                            tickets_per_day=60))
    recipients = [
        {"email": "ops@example.com", "name": "运营总监", "locale": "zh-CN"},
        {"email": "bj.head@example.com", "name": "北京主管", "locale": "zh-CN",
         "department": "bj_call_centre"},
    ]
    return settings_for(tmp_path, sources, airflow_home=str(airflow_home),
                        **{"delivery.weekly": recipients,
                           "delivery.monthly": [{"email": "ceo@example.com", "name": "CEO",
                                                 "locale": "en"}], **overrides})


def _newest_run_tasks(settings, dag_id: str) -> list[tuple]:
    """(task, map index, state, its name in the UI) of the DAG's newest run, the
    heartbeat left out (a manual run skips it)."""
    with sqlite3.connect(settings.airflow_home_path / "airflow.db") as metadata:
        return metadata.execute(
            "select task_id, map_index, state, rendered_map_index from task_instance "
            "where dag_id = ? and task_id != 'check_nightly_heartbeat' and run_id = "
            "(select run_id from dag_run where dag_id = ? order by id desc limit 1) "
            "order by task_id, map_index", (dag_id, dag_id)).fetchall()


def test_nightly_then_weekly_report_dag_delivers_once(tmp_path, airflow_home):
    settings = _settings(tmp_path, airflow_home)
    began = datetime.now(UTC)
    outcome = run_nightly(settings, SUNDAY)
    assert outcome.state == "success"
    assert outcome.data_interval == ("2026-11-21 16:00:00+00:00", "2026-11-22 16:00:00+00:00")
    # Airflow's record shows the run as it happened (`dags test` wrote the logical date
    # as its start: a 14-hour run in the UI), and its state decided the outcome.
    with sqlite3.connect(settings.airflow_home_path / "airflow.db") as metadata:
        state, start, end = metadata.execute(
            "select state, start_date, end_date from dag_run where dag_id = "
            "'servicepulse_nightly' order by id desc limit 1").fetchone()
        # dbt's per-model digest travels with the KPI marts Asset event, free of colour.
        (extra,) = metadata.execute(
            "select e.extra from asset_event e join asset a on a.id = e.asset_id "
            "where a.uri = 'servicepulse://marts/kpi_weekly' order by e.id desc "
            "limit 1").fetchone()
    start, end = (datetime.fromisoformat(v).replace(tzinfo=UTC) for v in (start, end))
    assert state == "success" and began <= start < end and end - start < timedelta(hours=1)
    dbt = json.loads(extra)
    assert dbt["dbt"].startswith("Done. PASS=") and "\x1b" not in extra
    assert set(dbt["summary"]["counts"]["model"]) == {"success"}
    assert dbt["summary"]["problems"] == []
    assert {"name", "seconds"} <= set(dbt["summary"]["slowest"][0])
    assert not (settings.output_path / "outbox" / "weekly").exists()  # reports wait
    for attempt in range(2):  # a re-run of the report DAG sends nothing twice
        assert run_weekly_report(settings, "2026-W47", SUNDAY).state == "success"
        # One mapped render-and-send task per audience (the organisation in both
        # languages, the Beijing head's slice); the re-run finds the week delivered and
        # plans none, and its finish step still runs.
        assert _newest_run_tasks(settings, "servicepulse_weekly_report") == ([
            ("finish_weekly_report", -1, "success", None),
            ("plan_weekly_report", -1, "success", None),
            ("render_and_send_weekly_report", 0, "success", "organisation en"),
            ("render_and_send_weekly_report", 1, "success", "organisation zh-CN"),
            ("render_and_send_weekly_report", 2, "success", "bj_call_centre zh-CN"),
        ] if attempt == 0 else [
            ("finish_weekly_report", -1, "success", None),
            ("plan_weekly_report", -1, "success", None),
            ("render_and_send_weekly_report", -1, "skipped", None)])
    for _ in range(2):
        assert run_monthly_report(settings, "2026-10", SUNDAY).state == "success"
    with connected(settings, read_only=True) as warehouse:
        rows = ledger_rows(settings, warehouse)
    assert sorted((r["report"], r["recipient"], r["sequence"], r["status"]) for r in rows) == [
        ("monthly", "ceo@example.com", 0, "sent"),
        ("weekly", "bj.head@example.com", 0, "sent"), ("weekly", "ops@example.com", 0, "sent")]
    monthly_pdf = (settings.output_path / "reports" / "monthly" / "2026-10" /
                   "servicepulse-monthly-2026-10-all-en.pdf")
    assert "Monthly service-quality review" in PdfReader(monthly_pdf).pages[0].extract_text()

    with connected(settings, read_only=True) as warehouse:
        csat = kpi_document(settings, warehouse, Period.parse("2026-W47"))["kpis"]["CSAT"]
    assert 0 < csat["denominator"] and 0 <= csat["value"] <= 1
    csat_text = Messages("zh-CN").kpi_value(csat["value"], "fraction")

    pdf = (settings.output_path / "reports" / "weekly" / "2026-W47" /
           "servicepulse-weekly-2026-W47-all-zh-CN.pdf")
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "客户满意率" in text and "响应及时率" in text and "服务质量周报" in text
    assert csat_text in text

    eml = settings.output_path / "outbox" / "weekly" / "2026-W47" / "ops@example.com.eml"
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == "ops@example.com"
    attachment = next(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf.read_bytes()
    assert list((settings.output_path / "quality").glob("*.json"))


def test_a_bad_row_is_quarantined_and_a_missing_column_fails_the_run(tmp_path, airflow_home):
    settings = _settings(tmp_path, airflow_home,
                         **{"delivery.data_team": ["data.team@example.com"]})
    audits = settings.sources_dir / "audits.csv"
    original = audits.read_text()
    lines = original.splitlines()
    fields = lines[9].split(",")
    fields[5] = "n/a"  # score_1 of the audit on row 10
    lines[9] = ",".join(fields)
    audits.write_text("\n".join(lines) + "\n")

    # The good rows go on; the data team is told which row broke which rule.
    assert run_nightly(settings, SUNDAY).state == "success"
    (alert,) = (settings.output_path / "outbox" / "alerts").glob("data-quality-*-raw*.eml")
    text = email.message_from_bytes(alert.read_bytes(), policy=policy.default) \
        .get_body(("plain",)).get_content()
    assert "raw_audits" in text and "no_rows_quarantined" in text
    assert str(audits) in text and '"source_row": 10' in text and '"value": "n/a"' in text
    with connected(settings) as warehouse:
        audit_ids = warehouse.fetch_frame("select audit_id from raw.audits")["audit_id"]
    assert len(audit_ids) == len(lines) - 2          # every row but the bad one

    # A delivery without a column it neither maps nor declares absent stops that source,
    # naming file and column.
    audits.write_text(original.replace("score_1", "score_one", 1))
    with pytest.raises(PipelineRunError) as error:
        run_nightly(settings, date(2026, 11, 23))
    message = str(error.value)
    assert "audits.csv, row 1, column 'score_1': field(s) not delivered: score_1" in message
