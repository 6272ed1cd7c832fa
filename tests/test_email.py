"""The report e-mails as their readers meet them: in a mail client on a phone. Each
message the publishing run wrote to the outbox is opened in a real browser (Debian's
chromium through Playwright) at 360 px and 1280 px, its inline chart served from the
message itself; screenshots are kept in output/test-artefacts/email/. And the message
keeps to what classic mail clients accept: inline CSS, nothing fetched, a size budget."""

from __future__ import annotations

import base64
import email
import re
from email import policy

import pytest

from servicepulse.kpis import Period
from servicepulse.paths import PROJECT_ROOT
from servicepulse.publishing import render_and_deliver

ARTEFACTS = PROJECT_ROOT / "output" / "test-artefacts" / "email"
WEEK, MONTH = Period.parse("2026-W47"), Period.parse("2026-11")
PHONE = {"width": 360, "height": 640}
# Gmail cuts an HTML body after 102 KB ("[Message clipped]"); the chart must not make a
# phone download much before the summary can be read.
HTML_BUDGET, IMAGE_BUDGET = 100_000, 60_000


@pytest.fixture(scope="module")
def messages(tmp_path_factory, copy_of_known_answers):
    """Every e-mail of a weekly and a monthly run: (report, recipient) -> message."""
    settings = copy_of_known_answers(tmp_path_factory.mktemp("email"))
    render_and_deliver(settings, WEEK)
    render_and_deliver(settings, MONTH)
    found = {}
    for report, period in (("weekly", WEEK), ("monthly", MONTH)):
        for path in sorted((settings.output_path / "outbox" / report / period.label)
                           .glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            found[(report, message["To"].addresses[0].addr_spec)] = message
    assert {report for report, _ in found} == {"weekly", "monthly"}
    return found


def _html(message) -> str:
    return message.get_body(("html",)).get_content()


def _inline_images(message) -> dict[str, bytes]:
    """Content-ID (without brackets) -> bytes of every image inside the message."""
    return {part["Content-ID"].strip("<>"): part.get_content()
            for part in message.walk() if part.get_content_maintype() == "image"}


def _as_a_mail_client_shows_it(message) -> str:
    """The HTML with each cid: reference replaced by its image's bytes, which is what a
    mail client does; a browser cannot resolve cid: itself."""
    html = _html(message)
    for cid, content in _inline_images(message).items():
        html = html.replace(f"cid:{cid}",
                            "data:image/png;base64," + base64.b64encode(content).decode())
    return html


def test_the_email_keeps_to_what_classic_mail_clients_accept(messages):
    for (report, recipient), message in messages.items():
        html = _html(message)
        where = f"{report} e-mail to {recipient}"
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        # Styles inline only: clients drop <style> and <link>, and run no scripts.
        for refused in ("<style", "<link", "<script", "url("):
            assert refused not in html, f"{where}: {refused}"
        # Nothing fetched from anywhere: every image is inside the message.
        sources = re.findall(r'<img[^>]+src="([^"]+)"', html)
        assert sources and all(s.startswith("cid:") for s in sources), where
        images = _inline_images(message)
        assert {s.removeprefix("cid:") for s in sources} == set(images), where
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html), where
        assert all(content.startswith(b"\x89PNG") for content in images.values())
        # The image's words are in the HTML too, for a client that shows no images.
        assert re.search(r'<img[^>]+alt="[^"]{20,}"', html), where
        assert len(html.encode()) < HTML_BUDGET, where
        assert sum(map(len, images.values())) < IMAGE_BUDGET, where
        # The PDF stays an attachment; the chart is not one.
        attached = [part.get_filename() for part in message.iter_attachments()]
        assert len(attached) == 1 and attached[0].endswith(".pdf"), where
        # multipart/related names its root's type (RFC 2387).
        related = next(p for p in message.walk() if p.get_content_type() == "multipart/related")
        assert related.get_param("type") == "text/html", where
        # A client that shows only text has the same order: summary, off target, all.
        lines = message.get_body(("plain",)).get_content().splitlines()
        off_target = next(i for i, line in enumerate(lines)
                          if re.match(r"(Off target \(|未达标指标（)", line))
        every_kpi = lines.index("All headline indicators" if "Off" in lines[off_target]
                                else "全部核心指标")
        first_bullet = next(i for i, line in enumerate(lines) if line.startswith("- "))
        assert first_bullet < off_target < every_kpi, where


# Every element that must not wrap (figures, status words): as many boxes as lines.
_WRAPPED = """() => [...document.querySelectorAll('span')]
    .filter(span => span.style.whiteSpace === 'nowrap' && span.getClientRects().length > 1)
    .map(span => span.textContent)"""


def test_on_a_phone_the_first_screen_is_the_summary_and_the_off_target_kpis(messages, browser):
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for (report, recipient), message in messages.items():
        where = f"{report} e-mail to {recipient}"
        name = f"{report}-{recipient.split('@')[0]}"
        for viewport in (PHONE, {"width": 1280, "height": 800}):
            page = browser.new_page(viewport=viewport)
            page.set_content(_as_a_mail_client_shows_it(message))
            page.screenshot(path=str(ARTEFACTS / f"{name}-{viewport['width']}px.png"),
                            full_page=True)
            # No sideways scrolling, and nothing breaks inside a figure or status word.
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            assert page.evaluate(_WRAPPED) == [], where
            if viewport is PHONE:
                summary = page.locator("#summary").bounding_box()
                off_target = page.locator("#off-target").bounding_box()
                first_card = page.locator(".card").first
                assert summary["y"] < off_target["y"] < PHONE["height"], where
                # The known-answer week has KPIs off target: the first card is on screen.
                assert first_card.count() == 1, where
                card = first_card.bounding_box()
                assert card["y"] + card["height"] <= PHONE["height"], where
                assert page.locator("#all-kpis").bounding_box()["y"] > card["y"]
                image = page.locator("img").bounding_box()
                assert 0 < image["width"] <= PHONE["width"]
            page.close()


def test_a_recipient_who_asks_gets_the_workbook_too(messages, copy_of_known_answers, tmp_path):
    from servicepulse.delivery.outbox import build_message
    from servicepulse.publishing import render_report, report_envelope, workbook_path
    from servicepulse.settings import Recipient
    from servicepulse.warehouse import connected

    settings = copy_of_known_answers(tmp_path)
    with connected(settings) as warehouse:
        pdf, context = render_report(settings, warehouse, WEEK, "en", None, tmp_path / "out")
    asks = Recipient(email="analyst@example.com", name="Analyst", locale="en",
                     attach_workbook=True)
    envelope = report_envelope(asks, WEEK, context, pdf)
    message = build_message("servicepulse@example.com", [(asks.name, str(asks.email))],
                            envelope.subject, envelope.html, envelope.text, "identity",
                            envelope.attachment, also_attached=envelope.also_attached,
                            inline_images=envelope.inline_images)
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    attached = {part.get_filename(): part.get_content() for part in parsed.iter_attachments()}
    assert attached == {pdf.name: pdf.read_bytes(),
                        workbook_path(pdf).name: workbook_path(pdf).read_bytes()}
    assert "spreadsheet" in _html(parsed)
    # Everyone else gets the PDF alone (the outbox's messages, checked above too).
    assert all(len(list(m.iter_attachments())) == 1 for m in messages.values())
