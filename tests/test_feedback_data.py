"""Survey comments for a report's feedback section (servicepulse.reports.feedback_data):
read from a built warehouse (loader + dbt), the sample the period and department ask
for, in a fixed order, and never a phone number, e-mail address, identity number or
customer name unmasked.

The sources are the known-answer set (tests/known_answers.py) with comments full of
personal data, and a third customer with an English name. Week 47 is 16-22 November
2026, Asia/Shanghai.
"""

from __future__ import annotations

from datetime import date

import pytest

from servicepulse.kpis import Period
from servicepulse.reports.feedback_data import survey_comments
from servicepulse.settings import ConfigError
from servicepulse.warehouse import connected
from tests import known_answers
from tests.conftest import settings_for
from tests.kpi_harness import UNTIL, load_and_build

WEEK_47, WEEK_48 = Period.parse("2026-W47"), Period.parse("2026-W48")

CUSTOMERS = known_answers.CUSTOMERS + (
    "C3,John Smith,+1 212 555 0100,enterprise,advanced,west,"
    "2025-01-01T00:00:00+08:00,2025-01-01T00:00:00+08:00\n")

# Answered in week 47: S1 (Mon 16 Nov 15:00, d_a), S2 (Tue 17 Nov 12:00, d_a), S3 and
# S7 (both Wed 18 Nov 10:00, d_b), S5 (Thu 19 Nov 10:00, d_a: a blank comment). S0 is
# week 46's, S6 week 48's (00:30 Monday local), S4 never answered.
COMMENTS = {
    "S0": "上周的事，电话 13700000000",
    "S1": "王伟：师傅很专业，请回电 13812345678 或 010-65529988转8",
    "S2": "李娜 here — email li.na@example.com, 身份证 110101199003074518",
    "S3": ("Thanks, JOHN SMITH. Call (212) 555-0147 or +1 212 555 0148. "
           "Paid 500元 on 2026-11-18 10:00 for ticket T-000123."),
    "S4": "never sent back: 13600000000",
    "S5": " \u3000\n",
    "S6": "下周的评论 13900000000",
    "S7": "Smith again: nobody called back",
}
PERSONAL_DATA = ["13700000000", "13812345678", "65529988", "王伟", "李娜",
                 "li.na@example.com", "110101199003074518", "JOHN", "SMITH", "Smith",
                 "555-0147", "555 0148", "13600000000", "13900000000"]


def _surveys() -> str:
    lines = known_answers.SURVEYS.strip("\n").split("\n")
    header, rows = lines[0], lines[1:]
    customer_of = {"S3": "C3", "S7": "C3"}
    written = [header]
    for row in rows:
        fields = row.split(",")
        response_id = fields[0]
        fields[3] = customer_of.get(response_id, fields[3])
        fields[-2] = f'"{COMMENTS[response_id]}"'
        written.append(",".join(fields))
    # S7 rates T4 (d_b) and is answered the same minute as S3.
    written.append(f'S7,T4,,C3,2026-11-18T09:00:00+08:00,2026-11-18T10:00:00+08:00,2,2,2,,3,'
                   f'"{COMMENTS["S7"]}",2026-11-18T10:00:00+08:00')
    return "\n".join(written) + "\n"


def _sources(folder):
    sources = known_answers.write(folder / "sources")
    (sources / "crm_customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (sources / "surveys.csv").write_text(_surveys(), encoding="utf-8")
    return sources


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("feedback")
    settings = settings_for(folder, _sources(folder))
    load_and_build(settings, UNTIL)
    return settings


def _comments(settings, period=WEEK_47, department=None, limit=10):
    with connected(settings) as warehouse:
        return survey_comments(settings, warehouse, period, department, limit)


def test_the_week_s_comments_newest_first_masked(built):
    assert _comments(built) == [
        {"answered_on": date(2026, 11, 18), "department": "d_b", "satisfaction": 4,
         "attitude_score": 5, "speed_score": 5, "professionalism_score": 4,
         "comment": "Thanks, [name]. Call [phone] or [phone]. "
                    "Paid 500元 on 2026-11-18 10:00 for ticket T-000123."},
        # The same minute as S3: response_id decides (S3 before S7).
        {"answered_on": date(2026, 11, 18), "department": "d_b", "satisfaction": 2,
         "attitude_score": 2, "speed_score": None, "professionalism_score": 3,
         "comment": "[name] again: nobody called back"},
        {"answered_on": date(2026, 11, 17), "department": "d_a", "satisfaction": 2,
         "attitude_score": 2, "speed_score": 2, "professionalism_score": 2,
         "comment": "[name] here — email [email], 身份证 [id]"},
        {"answered_on": date(2026, 11, 16), "department": "d_a", "satisfaction": 5,
         "attitude_score": 5, "speed_score": 5, "professionalism_score": 5,
         "comment": "[name]：师傅很专业，请回电 [phone] 或 [phone]"},
    ]


def test_nothing_personal_comes_back(built):
    returned = [comment for period in (WEEK_47, WEEK_48, Period.parse("2026-11"))
                for department in (None, "d_a", "d_b")
                for comment in _comments(built, period, department, limit=50)]
    assert len(returned) > 5
    text = repr(returned)
    for personal in PERSONAL_DATA:
        assert personal not in text, personal
    # Only the fields a report shows: no customer, response or ticket id.
    assert {frozenset(comment) for comment in returned} == {frozenset(
        {"answered_on", "department", "satisfaction", "attitude_score", "speed_score",
         "professionalism_score", "comment"})}


def test_limit_department_and_period_choose_the_sample(built):
    assert [c["department"] for c in _comments(built, limit=2)] == ["d_b", "d_b"]
    # d_a's week: S2 and S1; S5's blank comment is nothing to quote.
    assert [c["answered_on"] for c in _comments(built, department="d_a")] == [
        date(2026, 11, 17), date(2026, 11, 16)]
    # Week 48: S6, answered 00:30 on Monday 23 November local (16:30 UTC on Sunday).
    (week_48,) = _comments(built, WEEK_48)
    assert (week_48["answered_on"], week_48["comment"]) == (date(2026, 11, 23),
                                                            "下周的评论 [phone]")
    # The month: S0 (10 November) too; S4 was never answered.
    assert len(_comments(built, Period.parse("2026-11"))) == 6


def test_zero_comments_reads_nothing(built):
    # The default: the warehouse is not even asked (None would fail if it were).
    assert survey_comments(built, None, WEEK_47, None, 0) == []
    assert built.reports.survey_comments == 0


def test_the_setting_is_bounded(tmp_path):
    sources = tmp_path / "sources"
    assert settings_for(tmp_path, sources, **{"reports.survey_comments": 5}) \
        .reports.survey_comments == 5
    for wrong in (-1, 51):
        with pytest.raises(ConfigError, match="survey_comments"):
            settings_for(tmp_path, sources, **{"reports.survey_comments": wrong})


def test_postgresql_returns_the_same_comments(built, tmp_path, postgres_prefix):
    """The same sources built on PostgreSQL: the same sample, the same masks, dates
    and whole-number scores."""
    on_postgres = settings_for(tmp_path, _sources(tmp_path), **{
        "warehouse.kind": "postgres", "warehouse.schema_prefix": postgres_prefix})
    load_and_build(on_postgres, UNTIL)
    for period in (WEEK_47, WEEK_48, Period.parse("2026-11")):
        for department in (None, "d_a", "d_b"):
            assert _comments(on_postgres, period, department) == \
                _comments(built, period, department), (period.label, department)


def test_a_published_report_quotes_them_masked_and_nothing_personal_leaves(built):
    """Published with comments asked for: the PDFs quote the masked comments, and no
    phone number, address, identity number or name reaches a PDF, a workbook (attached
    for one recipient) or an e-mail."""
    import email
    from email import policy

    from openpyxl import load_workbook
    from pypdf import PdfReader

    from servicepulse.publishing import render_and_deliver, workbook_path

    settings = settings_for(built.output_path.parent, built.sources_dir, **{
        "reports.survey_comments": 10,
        "delivery.weekly": [
            {"email": "ops@example.com", "name": "运营总监", "locale": "zh-CN",
             "attach_workbook": True},
            {"email": "head.a@example.com", "name": "A 主管", "locale": "en",
             "department": "d_a", "attach_workbook": True}]})
    published = render_and_deliver(settings, WEEK_47)
    pdf_text = {key: " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages)
                              .split())
                for key, path in published.reports.items()}
    workbooks = [" ".join(str(cell) for sheet in load_workbook(workbook_path(path))
                          for row in sheet.iter_rows(values_only=True) for cell in row)
                 for path in published.reports.values()]
    outbox = settings.output_path / "outbox" / "weekly" / WEEK_47.label
    messages = [email.message_from_bytes(path.read_bytes(), policy=policy.default)
                for path in sorted(outbox.glob("*.eml"))]
    assert len(messages) == 2
    mails = [" ".join(str(part.get_content()) for part in message.walk()
                      if part.get_content_maintype() == "text") for message in messages]
    for text in [*pdf_text.values(), *workbooks, *mails]:
        for personal in PERSONAL_DATA:
            assert personal not in text, personal
    organisation = pdf_text[("en", None)]
    assert "In the customers' words" in organisation
    assert "[name] again: nobody called back" in organisation
    assert "Call [phone] or [phone]." in organisation
    # A department's report quotes its own department's customers only.
    assert "请回电 [phone]" in pdf_text[("en", "d_a")]
    assert "nobody called back" not in pdf_text[("en", "d_a")]
    # Both recipients asked for the workbook: it is attached beside the PDF.
    assert all({part.get_filename().rsplit(".", 1)[1] for part in message.iter_attachments()}
               == {"pdf", "xlsx"} for message in messages)
