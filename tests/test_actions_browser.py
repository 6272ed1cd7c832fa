"""The corrective-actions app in a real browser: Debian's chromium driven by Playwright
(both installed by `make setup`), against `servicepulse actions serve`'s app on a local
port. Screenshots of the main pages are kept in output/test-artefacts/actions/."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from servicepulse.actions import store
from servicepulse.actions.web import create_app
from servicepulse.paths import PROJECT_ROOT
from servicepulse.warehouse import connected
from tests.actions_data import (
    PASSWORD,
    X_SUBJECT,
    Y_SUBJECT,
    tracked_copy,
    unclosed_ids,
    with_passwords,
)

ARTEFACTS = PROJECT_ROOT / "output" / "test-artefacts" / "actions"


@pytest.fixture
def served(actions_built, tmp_path):
    """The app on a free local port, over a tracked copy of the hand-made data."""
    import uvicorn

    settings = with_passwords(tracked_copy(actions_built, tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the app did not start"
    yield settings, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def sign_in(browser, base: str, username: str, width: int = 1280):
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


ids = unclosed_ids


def test_a_department_head_works_an_action_and_the_quality_team_governs(served, browser):
    settings, base = served
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    actions = ids(settings)

    head = sign_in(browser, base, "head.x")
    listed = head.inner_text("#actions")
    assert actions["audit:AU1"] in listed and actions[X_SUBJECT] in listed
    assert actions[Y_SUBJECT] not in listed and "d_y" not in listed
    assert "流程审核 AU1（坐席 A_d_x，2026-08-12）" in listed   # the problem in their language
    head.screenshot(path=str(ARTEFACTS / "list-department-head.png"), full_page=True)

    head.click(f"text={actions['audit:AU1']}")
    head.select_option("select[name=cause_group]", "method")
    head.fill("textarea[name=cause]", "质检标准未同步到新员工 <i>培训</i>")
    head.fill("textarea[name=measure]", "每周质检复盘；更新话术库")
    head.click("#save-analysis")
    head.wait_for_selector("#mark-done")
    assert "质检标准未同步到新员工 <i>培训</i>" in head.inner_text("#cause")
    head.click("#mark-done")
    head.wait_for_load_state()
    assert "已完成，待验证" in head.inner_text("h1")
    assert [e.strip() for e in head.locator("#history li").all_inner_texts()][-1].endswith(
        "head.x 标记完成")
    head.screenshot(path=str(ARTEFACTS / "detail-done.png"), full_page=True)

    # Another department's action by URL: refused.
    response = head.goto(f"{base}/actions/{actions[Y_SUBJECT]}")
    assert response.status == 403
    assert "该整改项属于其他部门" in head.inner_text("main")
    head.screenshot(path=str(ARTEFACTS / "forbidden.png"))

    quality = sign_in(browser, base, "quality")
    assert actions[Y_SUBJECT] in quality.inner_text("#actions")
    quality.goto(f"{base}/actions/{actions[X_SUBJECT]}")
    quality.fill("#govern input[name=due_on]", "2026-12-31")
    quality.fill("form[action$='/extend'] input[name=reason]", "需跨部门协调")
    quality.click("#extend")
    quality.wait_for_load_state()
    assert quality.inner_text("#due") == "2026-12-31"
    quality.select_option("form[action$='/reassign'] select[name=department]", "d_y")
    quality.fill("form[action$='/reassign'] input[name=reason]", "响应由Y组接管")
    quality.click("#reassign")
    quality.wait_for_load_state()
    assert quality.inner_text("#department") == "d_y"
    quality.screenshot(path=str(ARTEFACTS / "detail-quality-team.png"), full_page=True)

    with connected(settings) as warehouse:
        history = store.history(settings, warehouse, actions[X_SUBJECT])
    assert [(e["actor"], e["event"]) for e in history][-2:] == [
        ("quality", "extended"), ("quality", "reassigned")]


def test_the_pages_fit_a_phone(served, browser):
    settings, base = served
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page = sign_in(browser, base, "quality", width=360)
    page.screenshot(path=str(ARTEFACTS / "list-360px.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.click(f"text={ids(settings)[Y_SUBJECT]}")
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(ARTEFACTS / "detail-360px.png"), full_page=True)
