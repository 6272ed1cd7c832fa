"""The corrective-actions app over HTTP (FastAPI's test client): who sees what, CSRF on
every form, sign-in that does not tell which names exist, sessions that end, free text
shown as text. tests/test_actions_browser.py drives the same app in a real browser."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient

from servicepulse.actions import people, store
from servicepulse.actions.web import create_app
from servicepulse.warehouse import connected
from tests.actions_data import (
    PASSWORD,
    X_SUBJECT,
    Y_SUBJECT,
    tracked_copy,
    unclosed_ids,
    with_passwords,
)

FORMS = ("analysis", "done", "reassign", "extend", "reopen")


@pytest.fixture
def app_settings(actions_built, tmp_path):
    return with_passwords(tracked_copy(actions_built, tmp_path))


ids = unclosed_ids


def token(page_html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_html).group(1)


def signed_in(settings, username: str) -> TestClient:
    client = TestClient(create_app(settings), follow_redirects=False)
    login = client.get("/login")
    answer = client.post("/login", data={"username": username, "password": PASSWORD,
                                         "csrf_token": token(login.text)})
    assert answer.status_code == 303, answer.text
    return client


def test_a_department_head_sees_and_opens_only_their_department(app_settings):
    client = signed_in(app_settings, "head.x")
    listing = client.get("/")
    assert listing.status_code == 200
    actions = ids(app_settings)
    assert actions[X_SUBJECT] in listing.text and actions["audit:AU1"] in listing.text
    assert actions[Y_SUBJECT] not in listing.text and "d_y" not in listing.text
    assert client.get(f"/actions/{actions[X_SUBJECT]}").status_code == 200
    refused = client.get(f"/actions/{actions[Y_SUBJECT]}")
    assert refused.status_code == 403
    assert "department d_y" not in refused.text  # nothing of the action itself
    assert client.get("/actions/CA-nothing").status_code == 404
    # Asking for another department in the filter shows their own only.
    assert actions[Y_SUBJECT] not in client.get("/?department=d_y").text
    # A change to another department's action is refused too (with a valid token).
    page = client.get(f"/actions/{actions[X_SUBJECT]}")
    posted = client.post(f"/actions/{actions[Y_SUBJECT]}/analysis", data={
        "csrf_token": token(page.text), "cause_group": "people", "cause": "x", "measure": "y"})
    assert posted.status_code == 403


def test_every_form_refuses_a_post_without_its_csrf_token(app_settings):
    client = signed_in(app_settings, "quality")
    action_id = ids(app_settings)[X_SUBJECT]
    with connected(app_settings) as warehouse:
        before = store.action(app_settings, warehouse, action_id)
    fields = {"cause_group": "people", "cause": "c", "measure": "m", "department": "d_y",
              "reason": "r", "due_on": "2027-01-01", "locale": "en"}
    refusal = "表单无法提交，请刷新页面后重试。"  # the CSRF refusal, not a state's
    for form in FORMS:
        for sent in ({}, {"csrf_token": "forged"}):
            answer = client.post(f"/actions/{action_id}/{form}", data={**fields, **sent})
            assert answer.status_code == 400 and refusal in answer.text, form
    for path in ("/logout", "/language"):
        assert client.post(path, data={"csrf_token": "forged"}).status_code == 400
    anonymous = TestClient(create_app(app_settings), follow_redirects=False)
    assert anonymous.post("/login", data={"username": "quality",
                                          "password": PASSWORD}).status_code == 400
    with connected(app_settings) as warehouse:
        assert store.action(app_settings, warehouse, action_id) == before


def test_sign_in_does_not_tell_which_names_exist(app_settings):
    def attempt(username: str, password: str):
        client = TestClient(create_app(app_settings), follow_redirects=False)
        page = client.get("/login")
        answer = client.post("/login", data={"username": username, "password": password,
                                             "csrf_token": token(page.text)})
        return answer.status_code, answer.text.replace(token(page.text), "")

    unknown = attempt("nobody.here", PASSWORD)
    wrong = attempt("head.x", "not the password at all")
    assert unknown[0] == wrong[0] == 401
    assert unknown[1] == wrong[1]
    assert "nobody.here" not in unknown[1]


def test_a_session_ends_after_its_time(app_settings, monkeypatch):
    # session_minutes is 480 by default; the clock is moved, not waited for.
    client = signed_in(app_settings, "head.x")
    assert client.get("/").status_code == 200
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 481 * 60)
    ended = client.get("/")
    assert ended.status_code == 303 and ended.headers["location"] == "/login?expired=1"


def test_signing_out_or_a_new_password_ends_every_session(app_settings, monkeypatch):
    laptop, phone = signed_in(app_settings, "head.x"), signed_in(app_settings, "head.x")
    time.sleep(0.01)
    csrf = token(laptop.get("/").text)
    assert laptop.post("/logout", data={"csrf_token": csrf}).status_code == 303
    # The phone's cookie is still signed, but the session is over.
    assert phone.get("/").headers["location"].startswith("/login")
    again = signed_in(app_settings, "head.x")
    time.sleep(0.01)
    with connected(app_settings) as warehouse:
        people.set_password(app_settings, warehouse, "head.x", PASSWORD + " new")
    assert again.get("/").status_code == 303
    # And no session outlives session_max_hours (12 by default), used or not: the clock
    # is moved, not waited for, so a slow machine cannot end the session early.
    client = signed_in(app_settings, "head.y")
    real_time, shift = time.time, {"hours": 0.0}
    monkeypatch.setattr(time, "time", lambda: real_time() + shift["hours"] * 3600)
    for hours in (7, 11.9):   # each page within session_minutes (8 h) of the last
        shift["hours"] = hours
        assert client.get("/").status_code == 200
    shift["hours"] = 12.1
    assert client.get("/").headers["location"] == "/login?expired=1"


def test_a_head_cannot_change_an_action_moved_to_another_department(app_settings):
    head = signed_in(app_settings, "head.x")
    audit = ids(app_settings)["audit:AU1"]
    csrf = token(head.get(f"/actions/{audit}").text)   # the page, while it was theirs
    with connected(app_settings) as warehouse:
        store.reassign(app_settings, warehouse, audit, "quality", "d_y", "head.y", "moved")
    posted = head.post(f"/actions/{audit}/analysis", data={
        "csrf_token": csrf, "cause_group": "people", "cause": "x", "measure": "y"})
    assert posted.status_code == 403
    with connected(app_settings) as warehouse:
        assert store.action(app_settings, warehouse, audit)["cause"] is None


def test_free_text_is_shown_as_text_and_the_pages_forbid_scripts(app_settings):
    client = signed_in(app_settings, "head.x")
    action_id = ids(app_settings)["audit:AU1"]
    page = client.get(f"/actions/{action_id}")
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    posted = client.post(f"/actions/{action_id}/analysis", data={
        "csrf_token": token(page.text), "cause_group": "method",
        "cause": "<script>alert('x')</script>", "measure": '<img src=x onerror="alert(1)">'})
    assert posted.status_code == 303
    shown = client.get(f"/actions/{action_id}").text
    assert "<script>alert" not in shown and "<img src=x" not in shown
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in shown
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in shown


def test_the_quality_team_reassigns_extends_and_reopens(app_settings):
    client = signed_in(app_settings, "quality")
    actions = ids(app_settings)
    audit = actions["audit:AU1"]
    page = client.get(f"/actions/{audit}")
    assert page.status_code == 200
    csrf = token(page.text)
    assert client.post(f"/actions/{audit}/extend", data={
        "csrf_token": csrf, "due_on": "2026-12-31", "reason": "审核复核中"}).status_code == 303
    assert client.post(f"/actions/{audit}/reassign", data={
        "csrf_token": csrf, "department": "d_y", "owner": "",
        "reason": "the agent moved"}).status_code == 303
    with connected(app_settings) as warehouse:
        row = store.action(app_settings, warehouse, audit)
        events = store.history(app_settings, warehouse, audit)
    assert (row["department"], row["owner"], row["due_on"].isoformat()) == (
        "d_y", "head.y", "2026-12-31")
    assert [e["event"] for e in events][-2:] == ["extended", "reassigned"]
    assert events[-1]["actor"] == "quality" and events[-1]["detail"]["reason"] == \
        "the agent moved"
    # head.x no longer sees it; head.y does.
    assert signed_in(app_settings, "head.x").get(f"/actions/{audit}").status_code == 403
    assert signed_in(app_settings, "head.y").get(f"/actions/{audit}").status_code == 200
    # A department head cannot govern: extend is the quality team's.
    head = signed_in(app_settings, "head.y")
    csrf_y = token(head.get(f"/actions/{audit}").text)
    assert head.post(f"/actions/{audit}/extend", data={
        "csrf_token": csrf_y, "due_on": "2027-06-30", "reason": "more time"}).status_code == 403
    # Reopen a verified action.
    with connected(app_settings) as warehouse:
        verified = store.actions(app_settings, warehouse, statuses=(store.VERIFIED,))[0]
    assert client.post(f"/actions/{verified['action_id']}/reopen", data={
        "csrf_token": csrf, "reason": "customers still complain"}).status_code == 303
    with connected(app_settings) as warehouse:
        assert store.action(app_settings, warehouse,
                            verified["action_id"])["status"] == "reopened"


def test_a_name_is_refused_after_five_failed_sign_ins_known_or_not(app_settings):
    app = create_app(app_settings)

    def attempt(username: str, password: str) -> int:
        client = TestClient(app, follow_redirects=False)
        page = client.get("/login")
        return client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token(page.text)}).status_code

    for username in ("head.x", "nobody.here"):
        assert [attempt(username, "wrong password!") for _ in range(5)] == [401] * 5
        assert attempt(username, PASSWORD) == 429   # even the right one, for now
    assert attempt("head.y", PASSWORD) == 303         # another name is not held back
