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


def _history(kpi_id, values, unit="fraction", status="green"):
    """Rows of ``kpi_id`` for the weeks before WEEK, oldest first, the last one the week
    just before."""
    weeks = [WEEK.previous(len(values) - i) for i in range(len(values))]
    return [{**_row(kpi_id, value, None, unit=unit, status=status),
             "period_start": week.start} for week, value in zip(weeks, values)]


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
    # Each moved by a quarter of a point in each of the four weeks before.
    history = _history("CSAT", [0.9225, 0.92, 0.9225, 0.92, 0.92]) + \
        _history("RESP_SLA", [0.9775, 0.975, 0.9775, 0.975, 0.975])
    lines = sections.summary(EN, "en", "week", rows, departments, categories, breaches,
                             rows + history)
    assert lines[0] == "None of the 2 indicators with a target is on target this week."
    # CSAT: 12 pp against a usual 0.25 pp, printed 0.2 pp (half-even): 60 times, as a
    # reader checks it from the sentence; RESP_SLA: 0.5 pp against 0.2 pp.
    assert lines[1] == ("CSAT moved most for how much it usually moves from week to week: "
                        "−12.0 pp to 80.0% (target 90.0%), 60.0 times its usual move of 0.2 pp.")
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


NO_CATEGORIES = {"rows": []}
NO_BREACHES = {"total": 0, "by_step": []}


def _movers(rows, history):
    return sections.summary(EN, "en", "week", rows, [], NO_CATEGORIES, NO_BREACHES,
                            rows + history)[1:]


def test_moved_most_is_judged_against_each_kpis_usual_move_not_its_target():
    # The complaint rate usually moves 0.1 pp a week and moved 0.4 pp: 4 times its usual.
    # First response usually moves 8 min and moved 7 min: less than usual. Divided by
    # their targets (0.4 / 2 = 0.2 against 7 / 30 = 0.23) the response time would win.
    rows = [_row("CMP_RATE", 0.024, 0.020, target=0.02, direction="lower"),
            _row("FRT", 37.0, 30.0, target=30.0, unit="minutes", direction="lower")]
    history = _history("CMP_RATE", [0.020, 0.021, 0.020, 0.021, 0.020]) + \
        _history("FRT", [30.0, 38.0, 30.0, 38.0, 30.0], unit="minutes")
    assert _movers(rows, history) == [
        ("CMP_RATE moved most for how much it usually moves from week to week: +0.4 pp to "
        "2.4% (target 2.0%), 4.0 times its usual move of 0.1 pp.")]
    assert sections.usual_move(history, "FRT", WEEK.start, "week") == 8.0


def test_no_kpi_is_named_when_none_moved_more_than_usual():
    rows = [_row("FRT", 33.0, 30.0, target=30.0, unit="minutes", direction="lower")]
    history = _history("FRT", [30.0, 38.0, 30.0, 38.0, 30.0], unit="minutes")
    assert _movers(rows, history) == [
        "No indicator moved more than it usually does from one week to the next."]


def test_without_enough_history_the_mover_is_the_kpi_whose_status_moved_furthest():
    # Two earlier changes, fewer than USUAL_MOVE_MIN_CHANGES: status decides. RESP_SLA
    # went from on target to off target (two steps); CSAT moved further in points but
    # was off target before and after.
    rows = [_row("CSAT", 0.60, 0.80, status="red"),
            _row("RESP_SLA", 0.95, 0.985, target=0.98, status="red")]
    history = _history("CSAT", [0.85, 0.80, 0.80], status="red") + \
        _history("RESP_SLA", [0.99, 0.985, 0.985], status="green")
    assert _movers(rows, history) == [
        ("RESP_SLA changed status most since last week, from On target to Off target: "
        "−3.5 pp to 95.0% (target 98.0%).")]
    # Nothing changed status: no sentence rather than a guess.
    history = _history("CSAT", [0.85, 0.80, 0.80], status="red") + \
        _history("RESP_SLA", [0.99, 0.985, 0.985], status="red")
    assert _movers(rows, history) == []


def test_a_figure_on_few_cases_shows_its_n_and_is_not_ranked():
    csat = _row("CSAT", 0.5, 0.9, sample_size=4, few_cases=True)
    # Four surveys: shown with n, but neither the week's mover nor anyone's weakest.
    assert sections.tiles(EN, "en", [csat])[0]["sample"] == "n = 4"
    assert _movers([csat], _history("CSAT", [0.9, 0.91, 0.9, 0.91, 0.9])) == []
    departments = [{**_department("d_a", "CSAT", 0.10, 0.9), "few_cases": True,
                    "sample_size": 2},
                   _department("d_b", "CSAT", 0.70, 0.9), _department("d_c", "CSAT", 0.80, 0.9)]
    for row in departments:
        row["status"] = "red"
    lines = sections.summary(EN, "en", "week", [_row("CSAT", 0.75, 0.9)], departments,
                             NO_CATEGORIES, NO_BREACHES, [])
    assert "CSAT is off target; the weakest department is d_b at 70.0%." in lines
    table = sections.department_table(EN, "en", [_row("CSAT", 0.75, 0.9)], departments)
    assert [c["sample"] for c in table["rows"][0]["cells"]] == ["n = 2", None, None, None]


def test_a_change_that_prints_as_nothing_is_plus_minus_zero_never_minus_zero():
    assert EN.kpi_change(0.90, 0.90004, "fraction") == "±0.0 pp"
    assert EN.kpi_change(29.96, 30.0, "minutes") == "±0.0 min"
    assert EN.kpi_change(0.899, 0.90, "fraction") == "−0.1 pp"
    assert EN.kpi_value(-0.0001, "fraction") == "0.0%"
    assert ZH.number(-0.04) == "0.0"
    # Where round() and the printed digits disagree (half-even at ...5): the digits win.
    assert EN.number(-0.05) == "0.0" and EN.number(-0.15) == "-0.2"
    assert EN.kpi_change(100, 103, "seconds") == "±0.0 min"   # 3 s is 0.05 min
    # A change too small to print is not a move.
    rows = [_row("CSAT", 0.90, 0.90004)]
    assert _movers(rows, _history("CSAT", [0.9, 0.9, 0.9, 0.9, 0.9004])) == []


def _tick_labels(svg):
    """The value axis's labels: the texts anchored at its right edge."""
    import re
    return re.findall(r'text-anchor="end" fill="#595959">([^<]+)</text>', svg)


def test_a_trend_chart_reads_without_the_table():
    from servicepulse.reports.charts import nice_ticks, trend_svg, value_range

    # Round ticks a reader would draw, covering the values' range.
    assert nice_ticks(88.6, 96.9) == [90, 92, 94, 96]
    assert nice_ticks(0.3, 1.4) == [0.5, 0.75, 1.0, 1.25]
    assert nice_ticks(0.0, 40.0) == [0.0, 10.0, 20.0, 30.0, 40.0]
    svg = trend_svg([90.0, 92.0, 95.5], ["W45", "W46", "W47"], 95.0, "target",
                    unit_label="%")
    assert ">%</text>" in svg                    # the unit above the value axis
    assert ">target 95.0</text>" in svg          # the target line says its value
    assert 'font-weight="bold" fill="#1f4e79">95.5</text>' in svg  # the latest point
    # Padded 12 %: 89.3 to 96.2, widened to round ticks (step 2): 88 to 98, with as few
    # decimals as the ticks need; then the two period labels.
    assert _tick_labels(svg) == ["%", "88", "90", "92", "94", "96", "98", "W47"]
    # Never past what the unit can take: a flat 100 % rate has no 101 % tick, a flat
    # zero count no negative one; a net promoter score below zero is labelled.
    assert value_range([100.0, 100.0], 95.0, (0.0, 100.0)) == (94, 100)
    assert value_range([0, 0, 0], None, (0.0, None)) == (0.0, 1.0)
    low, high = value_range([-12, 5, 30], 30, (-100.0, 100.0))
    assert low < -12 and low in nice_ticks(low, high)
    # The same values give the same drawing (vector, deterministic).
    assert svg == trend_svg([90.0, 92.0, 95.5], ["W45", "W46", "W47"], 95.0, "target",
                            unit_label="%")


def test_like_kpis_share_a_value_axis_and_others_fit_their_own():
    def weekly(kpi_id, value, unit="fraction", target=0.95):
        return [{**_row(kpi_id, value, None, target=target, unit=unit),
                 "period_start": WEEK.previous(back).start} for back in range(3)]

    rows = [_row("STEP_CLASSIFY_30M", 0.70, 0.7, target=0.95),
            _row("STEP_DISPATCH_1H", 0.99, 0.99, target=0.95),
            _row("RES_RATE", 0.94, 0.94, target=0.95)]
    history = weekly("STEP_CLASSIFY_30M", 0.70) + weekly("STEP_DISPATCH_1H", 0.99) + \
        weekly("RES_RATE", 0.94)
    charts = {c["name"]: c for c in sections.trends(EN, "en", rows, rows + history,
                                                    WEEK)["charts"]}
    # The two complaint steps are drawn to one axis, whatever their own values.
    assert charts["STEP_CLASSIFY_30M"]["shared_scale"]
    assert _tick_labels(charts["STEP_CLASSIFY_30M"]["svg"]) == \
        _tick_labels(charts["STEP_DISPATCH_1H"]["svg"])
    # The resolution rate is another measure held to the same 95 %: its own axis.
    assert not charts["RES_RATE"]["shared_scale"]
    assert _tick_labels(charts["RES_RATE"]["svg"]) != \
        _tick_labels(charts["STEP_CLASSIFY_30M"]["svg"])


def test_a_kpi_without_history_is_judged_by_status_beside_those_with_history():
    # CSAT moved exactly its usual move (not more): not named. On-time delivery has two
    # weeks of history and fell from on target to off target: named by the status rule.
    rows = [_row("CSAT", 0.915, 0.92, status="green"),
            {**_row("ON_TIME_DELIVERY", 0.60, 0.95, target=0.95, status="red"),
             "display_order": 17}]
    history = _history("CSAT", [0.92, 0.915, 0.92, 0.915, 0.92]) + \
        _history("ON_TIME_DELIVERY", [0.95], status="green")
    assert _movers(rows, history) == [
        "No indicator moved more than it usually does from one week to the next.",
        ("ON_TIME_DELIVERY changed status most since last week, from On target to Off target: "
        "−35.0 pp to 60.0% (target 95.0%).")]


def test_the_backlog_is_counted_at_the_periods_end_or_the_last_day_the_data_has():
    week_48 = Period.parse("2026-W48")   # 23-29 November
    over = datetime(2026, 12, 3, 23, 59)
    running = datetime(2026, 11, 26, 15, 0)
    assert sections.backlog_moment(week_48, over) == datetime(2026, 11, 30)
    assert sections.backlog_moment(week_48, running) == datetime(2026, 11, 26)
    item = {"item_kind": "ticket", "item_id": "T1", "department": "d_a", "agent_id": None,
            "complaint_category": None, "opened_at_local": datetime(2026, 11, 20, 9),
            "age_days": 6.0}
    rows = [{"kpi_id": "BACKLOG", "period_start": week_48.start, "value": 1.0,
             "previous_value": 0.0, "not_measured_reason": None}]
    assert sections.backlog(EN, rows, week_48, [item], running)["oldest_title"] == \
        "The oldest open items at the end of 25 Nov 2026"
    assert sections.backlog(EN, rows, week_48, [item], over)["oldest_title"] == \
        "The oldest open items at the end of 29 Nov 2026"
