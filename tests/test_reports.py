"""Weekly report PDFs from the known-answer marts: text extracted from the PDF must
carry the mart's figures, in both languages, and a department slice only its rows.
Every page is also rendered to PNG in output/review/ for a person to look at."""

from __future__ import annotations

import email
import re
import subprocess
from email import policy
from pathlib import Path

import pytest
from pypdf import PdfReader

from servicepulse.kpis import Period
from servicepulse.reports.i18n import Messages
from servicepulse.reports.publish import publish_weekly
from servicepulse.reports.render import page_counter_css
from tests import known_answers
from tests.conftest import settings_for
from tests.kpi_harness import UNTIL, load_and_build

REVIEW_DIR = Path(__file__).resolve().parents[1] / "output" / "review"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reports")
    settings = settings_for(tmp, known_answers.write(tmp / "sources"))
    load_and_build(settings, UNTIL)
    return settings, publish_weekly(settings, Period.parse("2026-W47"))


def _text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def _review(path: Path) -> list[Path]:
    REVIEW_DIR.mkdir(parents=True, exist_ok=True)
    prefix = REVIEW_DIR / path.stem
    for stale in REVIEW_DIR.glob(f"{path.stem}-*.png"):  # a longer earlier render
        stale.unlink()
    subprocess.run(["pdftoppm", "-r", "70", "-png", str(path), str(prefix)], check=True)
    return sorted(REVIEW_DIR.glob(f"{path.stem}-*.png"))


def test_chinese_report_has_kpi_names_and_the_mart_figures(published):
    _, result = published
    path = result.reports[("zh-CN", None)]
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
    # 22 headline KPIs: summary and tiles, 12-week trends, the department table (KPIs as
    # rows, so it never runs off the page) and the quality panel.
    assert 1 <= len(PdfReader(path).pages) <= 6
    for name in ("问题解决率", "投诉5个工作日办结率", "回访及时率", "准时交付率",
                 "服务标准符合度", "综合绩效得分", "工单积压量"):
        assert name in text
    assert _review(path)


def test_english_report(published):
    _, result = published
    text = _text(result.reports[("en", None)])
    assert "Weekly service-quality report" in text and "ISO week 47 of 2026" in text
    assert "CSAT" in text and "50.0%" in text and "Off target" in text
    assert "Page 1 of" in text
    assert re.search(r"Data as of \d+ \w{3} 2026 \d\d:\d\d \(UTC\+08:00\)", text)


def test_department_slice_contains_only_its_department(published):
    _, result = published
    path = result.reports[("zh-CN", "d_a")]
    text = _text(path)
    assert "部门：d_a" in text
    assert "d_b" not in text
    # d_a's own RESP_SLA (2/3) and CSAT (1/3), not the organisation's 50 %.
    assert "66.7%" in text and "33.3%" in text
    _review(path)


def test_emails_go_to_configured_recipients_with_their_pdf(published):
    settings, result = published
    assert result.delivery.summary() == "3 sent"
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
    assert attachment.get_content() == result.reports[("zh-CN", "d_a")].read_bytes()
    html = head.get_body(("html",)).get_content()
    assert "响应及时率" in html and "66.7%" in html
    english = by_recipient["manager@example.com"]
    assert "CSAT" in english.get_body(("html",)).get_content()
    assert next(english.iter_attachments()).get_filename().endswith("-all-en.pdf")


def test_republishing_renders_identical_pdfs_and_sends_nothing_twice(published):
    settings, result = published
    first = {key: path.read_bytes() for key, path in result.reports.items()}
    again = publish_weekly(settings, Period.parse("2026-W47"))
    assert {key: path.read_bytes() for key, path in again.reports.items()} == first
    assert again.delivery.summary() == "3 already_sent"
    assert not any(o.content_changed for o in again.delivery.outcomes)
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

    keys = [set(yaml.safe_load((TEMPLATES_DIR / "messages" / f"{locale}.yaml").read_text(
        encoding="utf-8"))) for locale in ("en", "zh-CN")]
    assert keys[0] == keys[1]


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
