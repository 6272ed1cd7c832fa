"""Departments and recipients become file names by one rule: safe and distinct."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from servicepulse.delivery.outbox import write_to_outbox
from servicepulse.filenames import safe_name
from servicepulse.kpis import Period
from servicepulse.publishing import report_filename


@pytest.mark.parametrize("plain", ["d_a", "ops@example.com", "after-sales.east", "2026-W47"])
def test_a_safe_ascii_name_is_kept_as_it_is(plain):
    assert safe_name(plain) == plain


@pytest.mark.parametrize("value", ["售后/华东", "../../etc/passwd", "a/b", "东区", ".hidden",
                                   "with space", "tab\tand\nnewline", "", "x" * 300])
def test_any_other_value_becomes_one_ascii_component(value):
    name = safe_name(value)
    assert name.isascii() and "/" not in name and "\\" not in name
    assert name not in ("", ".", "..") and not name.startswith(".")
    assert len(name) <= 120
    assert safe_name(value) == name  # stable: the same value, the same file


def test_values_that_look_alike_never_share_a_file():
    values = ["a/b", "a_b", "a b", "a\\b", "售后/华东", "售后/华西", "华东", "华西", "A/B"]
    names = [safe_name(v) for v in values]
    assert len(set(names)) == len(values)


def test_a_department_with_a_slash_gets_its_report_file():
    name = report_filename("weekly", Period.parse("2026-W47"), "zh-CN", "售后/华东")
    assert name.startswith("servicepulse-weekly-2026-W47-") and name.endswith("-zh-CN.pdf")
    assert "/" not in name and name.isascii()
    assert name != report_filename("weekly", Period.parse("2026-W47"), "zh-CN", "售后/华西")


def test_the_outbox_keeps_a_message_inside_its_folder(tmp_path):
    message = EmailMessage()
    message["Subject"] = "x"
    message.set_content("x")
    path = write_to_outbox(tmp_path, ("weekly", "2026-W47"), "../../escape/售后", message)
    assert path.parent == tmp_path / "weekly" / "2026-W47"
    assert path.read_bytes() == message.as_bytes()
