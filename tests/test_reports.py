"""Report PDFs from the known-answer marts: text extracted from the PDF must carry the
mart's figures, in both languages, every section, and a department slice only its
rows. Every page is also rendered to PNG in output/review/ for a person to look at."""

from __future__ import annotations

import email
import re
import subprocess
from email import policy
from pathlib import Path

import pytest
from pypdf import PdfReader

from servicepulse.kpis import Period
from servicepulse.publishing import render_and_deliver
from servicepulse.reports.i18n import Messages
from servicepulse.reports.render import page_counter_css
from tests.kpi_harness import kpis

REVIEW_DIR = Path(__file__).resolve().parents[1] / "output" / "review"
WEEK, MONTH = Period.parse("2026-W47"), Period.parse("2026-11")
WEEKLY_SECTIONS = ("section_summary", "section_kpis", "section_trends", "section_breaches",
                   "section_backlog", "section_categories", "section_departments",
                   "section_agents", "section_audits", "section_quality")
MONTHLY_SECTIONS = ("section_summary", "section_scorecard", "section_trends",
                    "section_matrix", "section_top_issues", "section_ranking",
                    "section_audits", "section_quality")


@pytest.fixture(scope="module")
def published(tmp_path_factory, copy_of_known_answers):
    settings = copy_of_known_answers(tmp_path_factory.mktemp("reports"))
    return settings, render_and_deliver(settings, WEEK), render_and_deliver(settings, MONTH)


@pytest.fixture(scope="module")
def weekly(published):
    return published[1]


@pytest.fixture(scope="module")
def monthly(published):
    return published[2]


def _pages(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def _text(path: Path) -> str:
    return "\n".join(_pages(path))


def _flat(text: str) -> str:
    """Extracted text without line breaks inside a table cell or sentence."""
    return re.sub(r"\s+", " ", text)


def _review(path: Path) -> list[Path]:
    REVIEW_DIR.mkdir(parents=True, exist_ok=True)
    prefix = REVIEW_DIR / path.stem
    for stale in REVIEW_DIR.glob(f"{path.stem}-*.png"):  # a longer earlier render
        stale.unlink()
    subprocess.run(["pdftoppm", "-r", "70", "-png", str(path), str(prefix)], check=True)
    return sorted(REVIEW_DIR.glob(f"{path.stem}-*.png"))


def test_chinese_report_has_kpi_names_and_the_mart_figures(weekly):
    path = weekly.reports[("zh-CN", None)]
    text = _text(path)
    for name in ("客户满意率", "客户满意度指数", "净推荐值", "响应及时率", "一次性解决率",
                 "客户投诉率"):
        assert name in text
    assert "服务质量周报" in text and "2026年第47周" in text
    # CSAT 2/4 = 50.0 %, CSI 62.5, NPS −25, RESP_SLA 3/6 = 50.0 %, complaint rate 2/6.
    assert "50.0%" in text and "62.5" in text and "-25.0" in text.replace("−", "-")
    assert "33.3%" in text
    assert "未达标" in text and "达标" in text
    # ON_TIME_DELIVERY has a target and no delivery in W47: "nothing to measure", not
    # "trend only", which stays for KPIs without a target (COMPOSITE, BACKLOG).
    assert "本期无可计量数据" in text and "仅看趋势" in text
    assert 1 <= len(PdfReader(path).pages) <= 8
    for name in ("问题解决率", "投诉5个工作日办结率", "回访及时率", "准时交付率",
                 "服务标准符合度", "综合绩效得分", "工单积压量"):
        assert name in text
    assert _review(path)


def test_english_report(weekly):
    text = _text(weekly.reports[("en", None)])
    assert "Weekly service-quality report" in text and "ISO week 47 of 2026" in text
    assert "CSAT" in text and "50.0%" in text and "Off target" in text
    assert "Page 1 of" in text
    assert re.search(r"Data as of \d+ \w{3} 2026 \d\d:\d\d \(UTC\+08:00\)", text)
    _review(weekly.reports[("en", None)])


@pytest.mark.parametrize("report,sections", [("weekly", WEEKLY_SECTIONS),
                                             ("monthly", MONTHLY_SECTIONS)])
@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_section_heading_is_in_both_locales(weekly, monthly, report, sections, locale):
    result = weekly if report == "weekly" else monthly
    text = _flat(_text(result.reports[(locale, None)]))
    headings = Messages(locale).section_texts("week" if report == "weekly" else "month")
    for key in sections:
        assert headings[key] in text, key


def test_weekly_breach_list_says_which_complaint_which_step_how_late(weekly):
    """Known answers (test_known_answers.test_breach_list_week_47): P1 missed its
    callback by 2 d 8 h so far, P2 its dispatch by 10 h 40 min; both still undone."""
    english = _flat(_text(weekly.reports[("en", None)]))
    assert re.search(r"P1 Call back \(2 working days\) d_a .*? 11-20 24:00 not yet 2 d 8 h",
                     english)
    assert re.search(r"P2 Dispatch \(1 h\) d_b .*? 11-22 21:20 not yet 10.7 h", english)
    assert "Dispatch (1 h) 1; Call back (2 working days) 1" in english
    chinese = _flat(_text(weekly.reports[("zh-CN", None)]))
    assert "回访（2个工作日）" in chinese and "2 天 8 小时" in chinese
    assert "尚未完成" in chinese


def test_weekly_backlog_categories_agents_and_audits_come_from_the_marts(weekly):
    text = _flat(_text(weekly.reports[("en", None)]))
    # BACKLOG at the end of W47: 4 (2 under a day, 1 of 3-5 days, 1 over 5 days), +3.
    assert "Under 1 day 2 +2" in text and "3–5 days 1 +1" in text
    assert "Total 4 +3" in text
    # W47 complaints: P1 service attitude (urgent, escalated), P2 billing: 1 each, 50 %.
    assert re.search(r"Service attitude 1 50.0% \+1 100.0% ", text)
    assert re.search(r"Billing 1 50.0% \+1 0.0% ", text)
    # Agents of W47 (RESP_SLA): A1 2/2, A2 0/1, B1 1/2, B2 0/1.
    assert re.search(r"A1 d_a 2 100.0%", text) and re.search(r"A2 d_a 1 0.0%", text)
    assert re.search(r"B1 d_b 2 50.0%", text)
    # AU1: one process audit of d_a, 25.5 (on target); no mystery shopper visit.
    assert re.search(r"Whole organisation 1 25.5 On target 0 No data Nothing to measure",
                     text)


def test_department_slice_contains_only_its_department(weekly):
    path = weekly.reports[("zh-CN", "d_a")]
    text = _text(path)
    assert "部门：d_a" in text
    assert "d_b" not in text
    # d_a's own RESP_SLA (2/3) and CSAT (1/3), not the organisation's 50 %.
    assert "66.7%" in text and "33.3%" in text
    # Only d_a's breach (P1) and agents (A1, A2).
    assert "P1" in text and "P2" not in text
    assert "A1" in text and "A2" in text and "B1" not in text and "B2" not in text
    _review(path)


def test_monthly_contents_page_numbers_point_at_the_sections(monthly):
    pages = _pages(monthly.reports[("en", None)])
    contents = _flat(pages[0])
    assert "Contents" in contents
    headings = Messages("en").section_texts("month")
    for key in MONTHLY_SECTIONS:
        heading = headings[key]
        listed = re.search(re.escape(heading) + r" (\d+)", contents)
        assert listed, f"{heading!r} missing from the contents page"
        first = next(number for number, page in enumerate(pages[1:], start=2)
                     if heading in _flat(page))
        assert int(listed.group(1)) == first, heading


def test_monthly_report_has_the_mart_figures_and_year_over_year(published, monthly):
    settings = published[0]
    november = kpis(settings, "2026-11")
    path = monthly.reports[("en", None)]
    text = _flat(_text(path))
    assert "Monthly service-quality review" in text and "1 Nov 2026 – 30 Nov 2026" in text
    assert "vs a year ago" in text and "vs last month" in text
    # RESP_SLA 4/7, CMP_RATE 3/7, CSI 54.2 (test_known_answers.test_month_november_2026).
    assert f"Response-in-SLA rate {november['RESP_SLA']['value'] * 100:.1f}%" in text
    assert "Response-in-SLA rate 57.1%" in text and "Complaint rate 42.9%" in text
    assert "Customer Satisfaction Index 54.2" in text
    # November's missed deadlines: P3 not classified (received 01:00 on the 23rd),
    # P2 and P3 not dispatched, P1 not called back.
    assert "Classify (30 min) 1; Dispatch (1 h) 2; Call back (2 working days) 1" in text
    # Ranking by COMPOSITE, best first, as the mart says.
    composites = {d: kpis(settings, "2026-11", d)["COMPOSITE"]["value"] for d in ("d_a", "d_b")}
    best, worst = sorted(composites, key=lambda d: -composites[d])
    assert re.search(rf"1 {best} {composites[best]:.1f} .*? 2 {worst} {composites[worst]:.1f}",
                     text)
    assert 4 <= len(PdfReader(path).pages) <= 8
    _review(path)
    _review(monthly.reports[("zh-CN", None)])


def test_monthly_department_slice_shows_its_place_and_no_other_department(monthly):
    path = monthly.reports[("zh-CN", "d_b")]
    text = _flat(_text(path))
    assert "部门：d_b" in text and "d_a" not in text
    assert re.search(r"在 2 个部门中排名第 [12]。", text)
    assert "P1" not in text
    _review(path)


def test_emails_go_to_configured_recipients_with_their_pdf(published, weekly):
    settings = published[0]
    assert weekly.delivery.summary() == "3 sent"
    emails = sorted((settings.output_path / "outbox" / "weekly" / "2026-W47").glob("*.eml"))
    assert len(emails) == 3
    by_recipient = {}
    for path in emails:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        by_recipient[message["To"].addresses[0].addr_spec] = message
    assert set(by_recipient) == {"ops@example.com", "manager@example.com", "head.a@example.com"}
    head = by_recipient["head.a@example.com"]
    assert head["Subject"] == "[ServicePulse] 服务质量周报 2026-W47"
    attachment = next(head.iter_attachments())
    assert attachment.get_filename() == "servicepulse-weekly-2026-W47-d_a-zh-CN.pdf"
    assert attachment.get_content() == weekly.reports[("zh-CN", "d_a")].read_bytes()
    html = head.get_body(("html",)).get_content()
    assert "响应及时率" in html and "66.7%" in html
    english = by_recipient["manager@example.com"]
    assert "CSAT" in english.get_body(("html",)).get_content()
    assert next(english.iter_attachments()).get_filename().endswith("-all-en.pdf")


def test_monthly_emails_carry_the_summary_and_the_slice(published, monthly):
    settings = published[0]
    assert monthly.delivery.summary() == "2 sent"
    outbox = settings.output_path / "outbox" / "monthly" / "2026-11"
    ceo = email.message_from_bytes((outbox / "ceo@example.com.eml").read_bytes(),
                                   policy=policy.default)
    assert ceo["Subject"] == "[ServicePulse] Monthly service-quality review 2026-11"
    html = ceo.get_body(("html",)).get_content()
    assert "Response-in-SLA rate" in html and "57.1%" in html and "vs last month" in html
    head = email.message_from_bytes((outbox / "head.b@example.com.eml").read_bytes(),
                                    policy=policy.default)
    assert next(head.iter_attachments()).get_filename() == \
        "servicepulse-monthly-2026-11-d_b-zh-CN.pdf"


def test_republishing_renders_identical_pdfs_and_sends_nothing_twice(published):
    settings, weekly, monthly = published
    for period, first_run in ((WEEK, weekly), (MONTH, monthly)):
        first = {key: path.read_bytes() for key, path in first_run.reports.items()}
        again = render_and_deliver(settings, period)
        assert {key: path.read_bytes() for key, path in again.reports.items()} == first
        assert not any(o.content_changed for o in again.delivery.outcomes)
        assert again.delivery.summary().endswith("already_sent")
    outbox = settings.output_path / "outbox" / "weekly" / "2026-W47"
    assert len(list(outbox.glob("*.eml"))) == 3


def test_page_counter_css_quotes_text_and_places_counters():
    assert page_counter_css("Page {page} of {pages}") == \
        '"Page " counter(page) " of " counter(pages)'
    assert page_counter_css(Messages("zh-CN")("page_of")) == \
        '"第 " counter(page) " 页，共 " counter(pages) " 页"'


def test_every_message_exists_in_both_catalogues():
    import yaml

    from servicepulse.reports.i18n import TEMPLATES_DIR

    catalogues = [yaml.safe_load((TEMPLATES_DIR / "messages" / f"{locale}.yaml").read_text(
        encoding="utf-8")) for locale in ("en", "zh-CN")]
    assert set(catalogues[0]) == set(catalogues[1])
    for nested in ("departments", "complaint_categories"):
        assert set(catalogues[0][nested]) == set(catalogues[1][nested])


def test_moments_carry_their_offset_in_each_locale():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    evening = datetime(2026, 11, 22, 23, 58, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert Messages("en").moment(evening) == "22 Nov 2026 23:58 (UTC+08:00)"
    assert Messages("zh-CN").moment(evening) == "2026年11月22日 23:58 (UTC+08:00)"
    summer = datetime(2026, 3, 29, 3, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert Messages("en").moment(summer).endswith("(UTC+02:00)")


def test_a_trend_without_any_value_says_so():
    from servicepulse.reports.charts import trend_svg

    empty = trend_svg([None] * 12, [f"W{w}" for w in range(36, 48)], 0.9, "target",
                      empty_label="No data")
    assert ">No data</text>" in empty and "<polyline" not in empty
    drawn = trend_svg([0.8, None, 0.9], ["W45", "W46", "W47"], 0.9, "target",
                      empty_label="No data")
    assert "No data" not in drawn and drawn.count("<polyline") == 2


def test_the_oldest_open_items_are_the_backlog_the_kpi_counts(published, weekly):
    """Listed without a limit, the open items are exactly as many as BACKLOG counts, for
    the organisation and a department; oldest first, each with its department."""
    from servicepulse.kpis import kpi_rows
    from servicepulse.reports.data import data_as_of, oldest_open_items
    from servicepulse.warehouse import connected

    settings = published[0]
    with connected(settings) as warehouse:
        as_of = data_as_of(settings, warehouse)
        for department in (None, "d_a"):
            backlog = next(r["value"] for r in kpi_rows(settings, warehouse, "week",
                                                        WEEK.start, WEEK.start, department)
                           if r["kpi_id"] == "BACKLOG")
            items = oldest_open_items(settings, warehouse, WEEK, department, as_of, 10_000)
            assert backlog > 0 and len(items) == backlog
            assert [i["age_days"] for i in items] == sorted((i["age_days"] for i in items),
                                                            reverse=True)
            assert department is None or {i["department"] for i in items} == {department}
    # The weekly PDF lists them (its slice's own in a department's report).
    text = _flat(_text(weekly.reports[("en", None)]))
    assert "The oldest open items" in text
    assert items[0]["item_id"] in _flat(_text(weekly.reports[("zh-CN", "d_a")]))


def test_figures_on_few_cases_are_marked_by_their_kpis_kind_and_minimum(published):
    """The reader marks the rows: per-case kinds get their n (CSAT's 3 surveys in d_a's
    week 47, fewer than 30), a weighted KPI none; an audit score is few below its own
    minimum (reports.min_sample_by_kpi, 3 by default), not below 30."""
    from servicepulse.kpis import kpi_rows
    from servicepulse.reports.data import mark_few_cases
    from servicepulse.warehouse import connected

    settings = published[0]
    with connected(settings) as warehouse:
        rows = {r["kpi_id"]: r for r in kpi_rows(settings, warehouse, "week", WEEK.start,
                                                 WEEK.start, "d_a")}
        mark_few_cases(settings, warehouse, list(rows.values()))
    csat, composite, audit = rows["CSAT"], rows["COMPOSITE"], rows["TPS"]
    assert (csat["sample_size"], csat["few_cases"]) == (csat["denominator"], True)
    assert 0 < csat["denominator"] < settings.reports.min_sample
    assert (composite["sample_size"], composite["few_cases"]) == (None, False)
    # AU1 is d_a's one audit of the week: below TPS's minimum of 3.
    assert (audit["sample_size"], audit["few_cases"]) == (1, True)
    assert settings.reports.min_sample_by_kpi["TPS"] == 3
    # With TPS's minimum at one audit, the same row is a figure to rank.
    relaxed = settings.model_copy(update={"reports": settings.reports.model_copy(
        update={"min_sample_by_kpi": {"TPS": 1}})})
    with connected(relaxed) as warehouse:
        mark_few_cases(relaxed, warehouse, [audit])
    assert audit["few_cases"] is False
