"""The report builders' pure parts: wording and formatting from hand-made mart rows."""

from __future__ import annotations

from datetime import date, datetime

from servicepulse.kpis import Period
from servicepulse.reports import sections
from servicepulse.reports.i18n import Messages

EN, ZH = Messages("en"), Messages("zh-CN")
WEEK = Period.parse("2026-W47")


def _row(kpi_id, value, previous, target=0.9, status="red", unit="fraction",
         direction="higher", **extra):
    return {"kpi_id": kpi_id, "name_en": kpi_id, "name_zh": kpi_id, "value": value,
            "previous_value": previous, "target": target, "status": status, "unit": unit,
            "direction": direction, "period_start": WEEK.start, "report_section": "headline",
            "display_order": 1, **extra}


def _department(code, kpi_id, value, previous, unit="fraction"):
    return {"dimension_value": code, "kpi_id": kpi_id, "value": value,
            "previous_value": previous, "unit": unit}


def test_lateness_reads_in_minutes_hours_or_days():
    assert EN.duration(14.4) == "14 min"
    assert EN.duration(640) == "10.7 h"
    assert EN.duration(3360) == "2 d 8 h"
    assert ZH.duration(3360) == "2 天 8 小时"
    # The end of a deadline day is that day's 24:00, not the next day's 00:00.
    assert EN.short_moment(datetime(2026, 11, 21, 0, 0)) == "11-20 24:00"
    assert EN.short_moment(datetime(2026, 11, 22, 21, 20)) == "11-22 21:20"


def test_summary_names_the_mover_its_target_the_department_and_the_top_category():
    rows = [_row("CSAT", 0.80, 0.92), _row("RESP_SLA", 0.97, 0.975, target=0.98)]
    departments = [_department("d_a", "CSAT", 0.70, 0.95), _department("d_b", "CSAT", 0.90, 0.89),
                   _department("d_a", "RESP_SLA", 0.99, 0.99),
                   _department("d_b", "RESP_SLA", 0.95, 0.96)]
    categories = {"rows": [{"category": "Billing", "complaints": "7", "share": "70.0%"}]}
    breaches = {"total": 3, "by_step": [{"step": "Dispatch (1 h)", "count": 2},
                                        {"step": "Classify (30 min)", "count": 1}]}
    lines = sections.summary(EN, "en", "week", rows, departments, categories, breaches)
    assert lines[0] == "None of the 2 indicators with a target is on target this week."
    assert lines[1] == ("CSAT moved most against last week: −12.0 pp to 80.0% "
                        "(target 90.0%).")
    # d_a fell 25 pp; d_b rose, so it is not where CSAT's fall came from.
    assert lines[2] == "Of the departments, d_a moved furthest that way: −25.0 pp."
    assert "the weakest department is d_a at 70.0%" in lines[3]
    assert "Most complaints were about Billing: 7 (70.0%)." in lines
    assert lines[-1] == "3 complaint steps missed their deadline, most at Dispatch (1 h) (2)."


def test_a_department_report_names_no_other_department_in_its_ranking():
    rows = [_department(code, "COMPOSITE", value, value - 1, unit="index")
            for code, value in (("d_a", 70.0), ("d_b", 85.0), ("d_c", 60.0))]
    for row in rows:
        row["target"], row["status"] = None, None
    whole = sections.department_ranking(EN, rows, None)
    assert [(r["rank"], r["department"]) for r in whole["rows"]] == \
        [(1, "d_b"), (2, "d_a"), (3, "d_c")]
    own = sections.department_ranking(EN, rows, "d_a")
    assert [r["department"] for r in own["rows"]] == ["d_a"]
    assert own["place_text"] == "Place 2 of 3 departments."


def test_a_long_breach_list_says_how_many_it_leaves_out():
    breach = {"complaint_id": "P1", "step": "dispatch", "department": "d_a",
              "complaint_category": "billing", "received_at_local": datetime(2026, 11, 16, 9),
              "due_at_local": datetime(2026, 11, 16, 10, 30), "done_at_local": None,
              "minutes_late": 90.0}
    listed = sections.breach_list(EN, [breach] * 5, limit=3)
    assert len(listed["rows"]) == 3 and listed["total"] == 5
    assert listed["more"].startswith("The 3 most overdue of 5 breaches are shown")
    assert listed["rows"][0]["done"] == "not yet" and listed["rows"][0]["late"] == "1.5 h"
    assert sections.breach_list(EN, [breach], limit=3)["more"] is None


def test_trend_window_is_twelve_weeks_or_thirteen_months():
    assert sections.trend_window(WEEK) == (date(2026, 8, 31), date(2026, 11, 16))
    assert sections.trend_window(Period.parse("2026-11")) == (date(2025, 11, 1),
                                                              date(2026, 11, 1))
