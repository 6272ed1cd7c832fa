"""Generated data with a known number of injected defects: the right check fails
with exactly that count, clean data passes every suite, a critical defect holds the
report and alerts the data team, a warning lets the report out with a note."""

from __future__ import annotations

import email
import json
from datetime import date, datetime, timedelta
from email import policy
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from servicepulse import pipeline
from servicepulse.constants import SOURCES
from servicepulse.demo.generate import GenerationSpec, generate
from servicepulse.quality.runner import QualityGateError
from servicepulse.warehouse import connected
from tests.conftest import settings_for

SH = ZoneInfo("Asia/Shanghai")
START, END = datetime(2026, 11, 22, tzinfo=SH), datetime(2026, 11, 23, tzinfo=SH)


def _prepare(tmp_path, defects=None, **overrides):
    sources = tmp_path / "sources"
    generate(GenerationSpec(out=sources, start=date(2026, 10, 19), days=35, seed=5,
                            tickets_per_day=150, defects=defects or {}))
    settings = settings_for(tmp_path, sources, **{
        "delivery.data_team": ["data.team@example.com"],
        "delivery.weekly": [{"email": "ops@example.com", "name": "Ops", "locale": "en"}],
        **overrides})
    for source in SOURCES:
        pipeline.load(source, START, END, settings=settings)
    return settings


def _failed(settings, layer):
    try:
        summary = pipeline.check_quality("run-1", START, END, layer, settings=settings)
    except QualityGateError as error:
        return {f"{f.suite}.{f.check}": f for f in error.failures}, error
    return {name: None for name in summary["warnings"]}, None


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_overrides(request):
    if request.param == "duckdb":
        return {}
    return {"warehouse.kind": "postgres",
            "warehouse.schema_prefix": request.getfixturevalue("postgres_prefix")}


def test_clean_data_passes_every_suite(tmp_path, warehouse_overrides):
    settings = _prepare(tmp_path, **warehouse_overrides)
    raw = pipeline.check_quality("clean", START, END, "raw", settings=settings)
    pipeline.transform(settings=settings)
    marts = pipeline.check_quality("clean", START, END, "marts", settings=settings)
    for summary in (raw, marts):
        assert summary["critical_failures"] == [] and summary["warnings"] == []
        assert summary["passed"] == summary["checks"] > 10
    assert not (settings.output_path / "outbox" / "alerts").exists()


@pytest.mark.parametrize("defect, count, check", [
    ("satisfaction_range", 3, "raw_survey_responses.satisfaction_range"),
    ("time_order", 2, "raw_crm_tickets.created_at_before_resolved_at"),
    ("orphan_customer", 4, "raw_crm_tickets.customer_id_references_crm_customers"),
])
def test_injected_defects_are_counted_exactly(tmp_path, defect, count, check):
    settings = _prepare(tmp_path, {defect: count})
    failures, error = _failed(settings, "raw")
    assert list(failures) == [check]
    failure = failures[check]
    found = failure.unexpected_count if failure.unexpected_count is not None \
        else int(failure.observed_value)
    assert found == count
    assert len(failure.failing_sample) == count  # the failing rows' keys
    assert check in str(error)


def test_stale_source_fails_freshness(tmp_path):
    """The ticket feed stopped 12 h before the end of the day. Complaints and surveys
    from other systems still name the tickets that never arrived, so their reference
    checks fail too, as they would for real; nothing else does."""
    failures, _ = _failed(_prepare(tmp_path, {"stale": 1}), "raw")
    assert "raw_crm_tickets.freshness" in failures
    assert set(failures) - {"raw_crm_tickets.freshness"} <= {
        "raw_complaints.ticket_id_references_crm_tickets",
        "raw_survey_responses.ticket_id_references_crm_tickets"}


def test_critical_defect_holds_the_run_and_alerts_the_data_team(tmp_path):
    settings = _prepare(tmp_path, {"time_order": 2})
    with pytest.raises(QualityGateError):
        pipeline.check_quality("held", START, END, "raw", settings=settings)
    alert = settings.output_path / "outbox" / "alerts" / "data-quality-held-raw.eml"
    message = email.message_from_bytes(alert.read_bytes(), policy=policy.default)
    assert message["To"] == "data.team@example.com"
    assert "reports for this interval are held" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert "CRITICAL: raw_crm_tickets.created_at_before_resolved_at: 2 unexpected row(s)" in body
    with connected(settings) as warehouse:
        stored = warehouse.fetch_frame(
            "select check_name, severity, failing_sample, interval_start, layer "
            "from quality.check_results where not success")
    assert stored.to_dict(orient="records") == [{
        "check_name": "created_at_before_resolved_at", "severity": "critical",
        "failing_sample": stored["failing_sample"][0], "interval_start": START.isoformat(),
        "layer": "raw"}]
    assert stored["failing_sample"][0].startswith('["T')
    # The offline overview shows the failure with its sample and loads nothing remote.
    page = (settings.output_path / "quality" / "index.html").read_text(encoding="utf-8")
    sample = json.loads(stored["failing_sample"][0])
    assert "created_at_before_resolved_at" in page and sample[0] in page
    assert '<td class="critical">1</td>' in page
    assert "http://" not in page and "https://" not in page


def test_warning_lets_the_report_out_with_a_note(tmp_path):
    settings = _prepare(tmp_path, {"volume_drop": 1})
    summary = pipeline.check_quality("warned", START, END, "raw", settings=settings)
    assert summary["warnings"] == ["raw_crm_tickets.volume"]
    assert (settings.output_path / "outbox" / "alerts" / "data-quality-warned-raw.eml").exists()
    pipeline.transform(settings=settings)
    pipeline.check_quality("warned", START, END, "marts", settings=settings)
    published = pipeline.publish_weekly("2026-W47", settings=settings)
    english = next(p for p in published["reports"] if p.endswith("-all-en.pdf"))
    text = "".join(page.extract_text() for page in PdfReader(english).pages)
    assert "Warnings, published with this note" in text and "raw_crm_tickets.volume" in text


def test_corrections_from_the_source_clear_the_gate_on_the_next_run(tmp_path):
    """Two tickets arrive resolved before they were created: the run that loads them is
    held. The CRM then sends corrected versions (same ids, later updated_at); the next
    night's run checks what it loaded, passes, and the report goes out."""
    import pandas as pd

    sources = tmp_path / "sources"
    generate(GenerationSpec(out=sources, start=date(2026, 10, 19), days=35, seed=5,
                            tickets_per_day=150))
    settings = settings_for(tmp_path, sources, **{
        "delivery.data_team": ["data.team@example.com"],
        "delivery.weekly": [{"email": "ops@example.com", "name": "Ops", "locale": "en"}]})
    path = sources / "crm_tickets.csv"
    tickets = pd.read_csv(path, dtype=str, keep_default_na=False)
    updated = pd.to_datetime(tickets["updated_at"], format="ISO8601", utc=True)
    single = ~tickets["ticket_id"].duplicated(keep=False)
    bad = tickets.index[single & (tickets["resolved_at"] != "") &
                        (updated < pd.Timestamp("2026-11-10", tz="UTC"))][:2]
    good_resolved = tickets.loc[bad, "resolved_at"].copy()
    tickets.loc[bad, "resolved_at"] = "2020-01-01T00:00:00+08:00"
    tickets.to_csv(path, index=False)

    saturday, sunday = START - timedelta(days=1), START
    for source in SOURCES:  # first load: backfills up to Sunday
        pipeline.load(source, saturday, sunday, settings=settings)
    with pytest.raises(QualityGateError, match="created_at_before_resolved_at: 2 unexpected"):
        pipeline.check_quality("saturday", saturday, sunday, "raw", settings=settings)

    corrections = tickets.loc[bad].assign(resolved_at=good_resolved,
                                          updated_at="2026-11-22T12:00:00+08:00")
    pd.concat([tickets, corrections]).to_csv(path, index=False)
    for source in SOURCES:
        pipeline.load(source, sunday, END, settings=settings)
    pipeline.check_quality("sunday", sunday, END, "raw", settings=settings)
    pipeline.transform(settings=settings)
    pipeline.check_quality("sunday", sunday, END, "marts", settings=settings)
    assert pipeline.publish_weekly("2026-W47", settings=settings)["delivery"] == "1 sent"
