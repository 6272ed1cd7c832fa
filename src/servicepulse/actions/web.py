"""`servicepulse actions serve`: the corrective-actions app, server-rendered.

Department heads see and work their departments' actions (cause, measure, done); the
quality team sees every department and reassigns, extends and reopens. No scripts, no
front-end build: HTML forms and one stylesheet.

Security:
- the session is a signed cookie (HttpOnly, SameSite=Strict; Secure over HTTPS or with
  ``actions.https_only``) that ends after ``actions.session_minutes`` without a page and
  ``actions.session_max_hours`` after sign-in; signing out or a new password ends every
  session of the user; signing in starts a new session;
- every form carries the session's CSRF token and a post without it is refused (the
  sign-in form too);
- sign-in says the same, after the same work, for an unknown name as for a wrong
  password; after five failures within 15 minutes a name is refused until they age
  out (the same for names that exist and names that do not), after 30 an address;
  password checks run in worker threads, never on the event loop;
- everything a person typed is shown as text (Jinja2 autoescaping), and the pages
  forbid scripts and framing (Content-Security-Policy);
- a department head asking for another department's action by URL gets 403.
"""

from __future__ import annotations

import hmac
import importlib.resources
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from servicepulse.actions import people, store
from servicepulse.actions.store import filter_rows, with_overdue
from servicepulse.actions.texts import messages, templates
from servicepulse.errors import UserError
from servicepulse.kpis import kpi_definitions
from servicepulse.settings import LOCALES, ActionUser, Settings
from servicepulse.warehouse import Warehouse, connected

log = logging.getLogger(__name__)

COOKIE = "servicepulse_actions"
# Failed sign-ins per name within the window before the name is refused for the rest of
# it: the same for names that exist and names that do not.
MAX_FAILED_SIGN_INS = 5
MAX_FAILED_SIGN_INS_PER_ADDRESS = 30
FAILED_SIGN_IN_WINDOW_SECONDS = 15 * 60
LIST_FILTERS = ("open", "overdue", "done", "verified", "reopened")


def _stylesheet() -> str:
    return importlib.resources.files("servicepulse.actions").joinpath(
        "static/app.css").read_text(encoding="utf-8")


def session_key(settings: Settings) -> str:
    key = os.environ.get(settings.actions.session_key_env, "")
    if key:
        return key
    log.warning("%s is not set: sessions are signed with a random key and end when the app "
                "restarts", settings.actions.session_key_env)
    return secrets.token_urlsafe(32)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="ServicePulse corrective actions", docs_url=None, redoc_url=None,
                  openapi_url=None)
    signer = URLSafeTimedSerializer(session_key(settings), salt="servicepulse-actions")
    max_age = int(settings.actions.session_minutes * 60)
    # One request at a time reaches the warehouse: a DuckDB file has one writer, and the
    # app's traffic (a few people) does not need more.
    warehouse_lock = threading.Lock()
    failed_sign_ins: dict[str, list[float]] = {}

    @contextmanager
    def warehouse() -> Iterator[Warehouse]:
        with warehouse_lock, connected(settings) as opened:
            store.ensure_tables(settings, opened)
            yield opened

    def read_session(request: Request) -> tuple[dict[str, Any], bool]:
        """The session's data, and whether it had expired (as opposed to never existing)."""
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return {}, False
        try:
            data = signer.loads(cookie, max_age=max_age)
        except SignatureExpired:
            return {}, True
        except BadSignature:
            return {}, False
        return (data if isinstance(data, dict) else {}), False

    def respond(request: Request, response: Response, session: dict[str, Any]) -> Response:
        # A browser-session cookie: the signature's age decides when the session ends,
        # so that an ended one is told apart from none ("please sign in again").
        response.set_cookie(COOKIE, signer.dumps(session), httponly=True, samesite="strict",
                            secure=settings.actions.https_only or request.url.scheme == "https",
                            path="/")
        return response

    def current_user(session: dict[str, Any]) -> ActionUser | None:
        username = session.get("u")
        return settings.actions.user(username) if username else None

    def signed_in(session: dict[str, Any], expired: bool) -> tuple[ActionUser | None, bool]:
        """The session's user, if the session still holds: younger than
        session_max_hours since sign-in, and signed in after the user last signed out or
        changed their password. Else None, and whether to say it ended."""
        user = current_user(session)
        if user is None:
            return None, expired
        issued = session.get("i")
        if not isinstance(issued, (int, float)) or \
                time.time() - issued > settings.actions.session_max_hours * 3600:
            return None, True
        with warehouse() as opened:
            valid_after = store.sessions_valid_after(settings, opened, user.username)
        if valid_after is None or issued < valid_after.timestamp():
            return None, True
        return user, False

    def page(request: Request, session: dict[str, Any], template: str, status_code: int = 200,
             **context: Any) -> Response:
        user = current_user(session)
        locale = session.get("l") or (user.locale if user else "zh-CN")
        if locale not in LOCALES:
            locale = "zh-CN"
        session = {**session, "l": locale}
        session.setdefault("c", secrets.token_urlsafe(32))
        body = templates().get_template(template).render(
            t=messages()[locale], locale=locale, user=user, csrf_token=session["c"],
            request_path=request.url.path, message=context.pop("message", None),
            message_kind=context.pop("message_kind", ""), **context)
        return respond(request, HTMLResponse(body, status_code=status_code), session)

    def error(request: Request, session: dict[str, Any], status_code: int, key: str) -> Response:
        locale = session.get("l") or "zh-CN"
        return page(request, session, "error.html.j2", status_code=status_code,
                    code=status_code, text=messages()[locale][key])

    async def form_of(request: Request, session: dict[str, Any]) -> dict[str, str] | None:
        """The posted form, or None when its CSRF token is missing or wrong."""
        form = await request.form()
        sent = str(form.get("csrf_token", ""))
        expected = str(session.get("c", ""))
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return None
        return {key: str(value) for key, value in form.items()}

    def to_sign_in(request: Request, expired: bool) -> Response:
        return RedirectResponse("/login" + ("?expired=1" if expired else ""), status_code=303)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/static/app.css")
    def stylesheet() -> Response:
        return Response(_stylesheet(), media_type="text/css")

    @app.get("/healthz")
    def health() -> Response:
        return PlainTextResponse("ok")

    @app.get("/login")
    def sign_in_page(request: Request, expired: int = 0) -> Response:
        session, _ = read_session(request)
        if current_user(session):
            return RedirectResponse("/", status_code=303)
        locale = session.get("l") or "zh-CN"
        return page(request, {"l": locale, "c": session.get("c") or secrets.token_urlsafe(32)},
                    "login.html.j2",
                    message=messages()[locale]["session_expired"] if expired else None,
                    message_kind="error")

    @app.post("/login")
    async def sign_in(request: Request) -> Response:
        session, _ = read_session(request)
        form = await form_of(request, session)
        locale = session.get("l") or "zh-CN"
        if form is None:
            return error(request, {"l": locale}, 400, "bad_request")
        name = form.get("username", "").strip().lower()[:64]
        address = f"address:{request.client.host if request.client else '?'}"
        now = time.monotonic()
        recent = {key: [moment for moment in failed_sign_ins.get(key, [])
                        if now - moment < FAILED_SIGN_IN_WINDOW_SECONDS]
                  for key in (name, address)}
        failed_sign_ins.update(recent)
        if len(failed_sign_ins) > 10_000:  # names tried long ago are forgotten
            for stale in [key for key, moments in failed_sign_ins.items()
                          if not moments or now - moments[-1] >= FAILED_SIGN_IN_WINDOW_SECONDS]:
                del failed_sign_ins[stale]
        if len(recent[name]) >= MAX_FAILED_SIGN_INS or \
                len(recent[address]) >= MAX_FAILED_SIGN_INS_PER_ADDRESS:
            return page(request, session, "login.html.j2", status_code=429,
                        message=messages()[locale]["too_many_sign_ins"], message_kind="error")

        def check() -> ActionUser | None:
            # A password check costs 0.1 s of CPU: in a worker thread, not on the loop.
            with warehouse() as opened:
                return people.authenticate(settings, opened, name, form.get("password", ""))

        user = await run_in_threadpool(check)
        if user is None:
            recent[name].append(now)
            recent[address].append(now)
            return page(request, session, "login.html.j2", status_code=401,
                        message=messages()[locale]["sign_in_failed"], message_kind="error")
        # A new session (new token) at sign-in: a token seen before it is worth nothing.
        fresh = {"u": user.username, "c": secrets.token_urlsafe(32), "l": user.locale,
                 "i": time.time()}
        return respond(request, RedirectResponse("/", status_code=303), fresh)

    @app.post("/logout")
    async def sign_out(request: Request) -> Response:
        session, _ = read_session(request)
        if await form_of(request, session) is None:
            return error(request, session, 400, "bad_request")
        user = current_user(session)
        if user is not None:
            def end() -> None:
                with warehouse() as opened:
                    store.end_sessions(settings, opened, user.username)
            await run_in_threadpool(end)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.post("/language")
    async def language(request: Request) -> Response:
        session, _ = read_session(request)
        form = await form_of(request, session)
        if form is None:
            return error(request, session, 400, "bad_request")
        if form.get("locale") in LOCALES:
            session["l"] = form["locale"]
        target = form.get("next", "/")
        target = target if target.startswith("/") and not target.startswith("//") else "/"
        return respond(request, RedirectResponse(quote(target), status_code=303), session)

    @app.get("/")
    def action_list(request: Request, status: str = "", department: str = "") -> Response:
        session, expired = read_session(request)
        user, expired = signed_in(session, expired)
        if user is None:
            return to_sign_in(request, expired)
        visible = people.visible_departments(user)
        chosen = [department] if department and (visible is None or department in visible) \
            else visible
        with warehouse() as opened:
            rows = store.actions(settings, opened, chosen)
        today = settings.today()
        rows = filter_rows(rows, status if status in LIST_FILTERS else None, today)
        locale = session.get("l") or user.locale
        for row in rows:
            row["problem_shown"] = store.problem_in(row, locale)
        return page(request, session, "list.html.j2", rows=rows, filters=LIST_FILTERS,
                    status=status if status in LIST_FILTERS else "", departments=visible)

    def _load_for(request: Request, action_id: str) -> tuple[Any, ...]:
        session, expired = read_session(request)
        user, expired = signed_in(session, expired)
        if user is None:
            return session, None, None, to_sign_in(request, expired)
        with warehouse() as opened:
            try:
                row = store.action(settings, opened, action_id)
            except store.ActionNotFound:
                return session, user, None, error(request, session, 404, "not_found")
        if not people.may_see(user, row):
            return session, user, None, error(request, session, 403, "forbidden")
        return session, user, row, None

    def detail_page(request: Request, session: dict[str, Any], user: ActionUser,
                    row: dict[str, Any], status_code: int = 200, message: str | None = None,
                    message_kind: str = "") -> Response:
        with warehouse() as opened:
            events = store.history(settings, opened, row["action_id"])
            findings = store.findings_of(settings, opened, row["action_id"])
            definitions = kpi_definitions(settings, opened) if row["kpi_id"] else {}
            departments = _departments(settings, opened)
        locale = session.get("l") or user.locale
        definition = definitions.get(row["kpi_id"]) if row["kpi_id"] else None
        kpi_name = (definition["name_zh"] if locale == "zh-CN" else definition["name_en"]) \
            if definition else None
        shown = with_overdue(row, settings.today())
        shown["problem_shown"] = store.problem_in(row, locale)
        for finding in findings:
            finding["detail_shown"] = store.problem_in(finding, locale, "detail")
        shown["done_at_text"] = _local_text(settings, row["done_at"])
        shown["verified_at_text"] = _local_text(settings, row["verified_at"])
        for event in events:
            event["at_text"] = _local_text(settings, event["happened_at"])
        return page(request, session, "detail.html.j2", status_code=status_code, row=shown,
                    history=events, findings=findings, kpi_name=kpi_name,
                    cause_groups=store.CAUSE_GROUPS, may_work=people.may_work(user, row),
                    may_govern=people.may_govern(user), all_departments=departments,
                    message=message, message_kind=message_kind)

    @app.get("/actions/{action_id}")
    def action_detail(request: Request, action_id: str, saved: int = 0) -> Response:
        session, user, row, refused = _load_for(request, action_id)
        if refused is not None:
            return refused
        locale = session.get("l") or user.locale
        return detail_page(request, session, user, row,
                           message=messages()[locale]["saved"] if saved else None)

    async def change(request: Request, action_id: str, allowed, apply) -> Response:
        """A form post on an action: the form is read first, then who may do it is
        decided on the action as it is now, and the change itself checks again inside
        its transaction (store: the action may have moved to another department)."""
        session, _ = read_session(request)
        form = await form_of(request, session)
        if form is None:
            return error(request, session, 400, "bad_request")
        session, user, row, refused = await run_in_threadpool(_load_for, request, action_id)
        if refused is not None:
            return refused
        if not allowed(user, row):
            return error(request, session, 403, "forbidden")

        def apply_it() -> Response | None:
            try:
                with warehouse() as opened:
                    apply(opened, user, form, row)
            except (UserError, ValueError) as exc:
                return detail_page(request, session, user, row, status_code=400,
                                   message=str(exc), message_kind="error")
            return None

        failed = await run_in_threadpool(apply_it)
        if failed is not None:
            return failed
        return RedirectResponse(f"/actions/{quote(action_id)}?saved=1", status_code=303)

    @app.post("/actions/{action_id}/analysis")
    async def analysis(request: Request, action_id: str) -> Response:
        return await change(request, action_id, people.may_work, lambda w, user, form, row:
                            store.record_work(settings, w, action_id, user.username,
                                              form.get("cause_group", ""),
                                              form.get("cause", "")[:4000],
                                              form.get("measure", "")[:4000],
                                              departments=people.visible_departments(user)))

    @app.post("/actions/{action_id}/done")
    async def done(request: Request, action_id: str) -> Response:
        return await change(request, action_id, people.may_work, lambda w, user, form, row:
                            store.mark_done(settings, w, action_id, user.username,
                                            departments=people.visible_departments(user)))

    @app.post("/actions/{action_id}/reassign")
    async def reassign(request: Request, action_id: str) -> Response:
        def apply(w: Warehouse, user: ActionUser, form: dict[str, str], row: dict) -> None:
            department = form.get("department", "").strip()
            if department not in _departments(settings, w):
                raise ValueError(f"unknown department {department!r}")
            owner = form.get("owner", "").strip() or settings.actions.owner_of(department)
            if owner and settings.actions.user(owner) is None:
                raise ValueError(f"unknown user {owner!r}")
            if not form.get("reason", "").strip():
                raise ValueError("a reassignment needs a reason")
            store.reassign(settings, w, action_id, user.username, department, owner,
                           form["reason"][:1000])
        return await change(request, action_id, lambda user, row: people.may_govern(user),
                            apply)

    @app.post("/actions/{action_id}/extend")
    async def extend(request: Request, action_id: str) -> Response:
        def apply(w: Warehouse, user: ActionUser, form: dict[str, str], row: dict) -> None:
            store.extend(settings, w, action_id, user.username,
                         date.fromisoformat(form.get("due_on", "")), form.get("reason", "")[:1000])
        return await change(request, action_id, lambda user, row: people.may_govern(user),
                            apply)

    @app.post("/actions/{action_id}/reopen")
    async def reopen(request: Request, action_id: str) -> Response:
        from servicepulse.actions.tracking import add_working_days

        def apply(w: Warehouse, user: ActionUser, form: dict[str, str], row: dict) -> None:
            today = settings.today()
            store.reopen(settings, w, action_id, user.username, form.get("reason", "")[:1000],
                         add_working_days(settings, w, today,
                                          settings.actions.due_working_days))
        return await change(request, action_id, lambda user, row: people.may_govern(user),
                            apply)

    return app


def _departments(settings: Settings, warehouse: Warehouse) -> list[str]:
    table = f'"{settings.warehouse.schema("marts")}"."dim_departments"'
    known = set(warehouse.fetch_frame(f"select department from {table}")["department"])
    known.add(settings.actions.organisation_department)
    known |= {d for user in settings.actions.users for d in user.departments}
    return sorted(str(d) for d in known if d)


def _local_text(settings: Settings, moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info",
                proxy_headers=True, server_header=False)
