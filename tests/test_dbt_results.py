"""The operator's view of a dbt build, read from run_results.json."""

from __future__ import annotations

import json

from servicepulse.dbt_results import log_table, read_run_results, summarise


def _result(unique_id, status, seconds, message="OK"):
    return {"unique_id": unique_id, "status": status, "execution_time": seconds,
            "message": message, "timing": [], "failures": None}


def _write(tmp_path, results):
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps({"metadata": {}, "results": results, "elapsed_time": 1.0}))
    return path


def test_counts_slowest_and_problems(tmp_path):
    path = _write(tmp_path, [
        _result("seed.servicepulse.kpi_definitions", "success", 0.2),
        _result("model.servicepulse.fct_tickets", "success", 3.5),
        _result("model.servicepulse.kpi_daily", "success", 7.25),
        _result("model.servicepulse.kpi_weekly", "error", 0.1,
                "Runtime Error in model kpi_weekly\n  division by zero"),
        _result("test.servicepulse.not_null_fct_tickets_ticket_id.3f2a1b", "pass", 0.05),
        _result("test.servicepulse.unique_fct_tickets_ticket_id.9c8d7e", "fail", 0.06,
                "Got 2 results, configured to fail if != 0"),
        _result("unit_test.servicepulse.kpi_daily.rates_by_day", "pass", 0.4),
        _result("model.servicepulse.kpi_monthly", "skipped", 0.0, "SKIP"),
    ])
    nodes = read_run_results(path)
    summary = summarise(nodes, slowest=2)
    assert summary["nodes"] == 8
    assert summary["counts"] == {"model": {"error": 1, "skipped": 1, "success": 2},
                                 "seed": {"success": 1}, "test": {"fail": 1, "pass": 1},
                                 "unit_test": {"pass": 1}}
    assert summary["slowest"] == [{"name": "kpi_daily", "seconds": 7.25},
                                  {"name": "fct_tickets", "seconds": 3.5}]
    assert [(p["name"], p["status"]) for p in summary["problems"]] == [
        ("kpi_weekly", "error"), ("unique_fct_tickets_ticket_id", "fail"),
        ("kpi_monthly", "skipped")]
    assert summary["problems"][0]["message"] == "Runtime Error in model kpi_weekly division by zero"
    json.dumps(summary)  # fit for an XCom and an Asset event's extra

    table = log_table(nodes).splitlines()
    assert table[0].split() == ["kind", "name", "status", "seconds"]
    assert any(line.split()[:3] == ["model", "kpi_daily", "success"] for line in table)
    assert not any("not_null_fct_tickets_ticket_id" in line for line in table)  # passes: counted
    assert any("unique_fct_tickets_ticket_id" in line for line in table)        # fails: listed
    assert table[-1] == "tests: 1 fail, 2 pass"


def test_a_real_build_reports_every_model_without_colour_codes(tmp_path, caplog):
    import logging
    from datetime import timedelta

    from servicepulse.constants import SOURCES
    from servicepulse.load import load_source
    from servicepulse.transform import build
    from servicepulse.warehouse import connected
    from tests import known_answers
    from tests.conftest import settings_for
    from tests.kpi_harness import UNTIL

    settings = settings_for(tmp_path, known_answers.write(tmp_path / "sources"))
    with connected(settings) as warehouse:
        for source in SOURCES:
            load_source(settings, warehouse, source, UNTIL - timedelta(days=1), UNTIL)
    with caplog.at_level(logging.INFO, logger="servicepulse.transform"):
        result = build(settings)
    summary = result.summary
    assert summary["problems"] == []
    assert summary["counts"]["model"] == {"success": summary["counts"]["model"]["success"]}
    assert summary["counts"]["model"]["success"] >= 20
    assert "\x1b[" not in result.output  # no ANSI colour codes for logs and XComs
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "fct_tickets" in logged and "kpi_weekly" in logged and "tests: " in logged
