"""The HTTP JSON API source (the complaint system): every page landed as it came.

GET ``url`` with ``updated_since`` / ``updated_before`` (the load window) and
``limit``, then cursor (``cursor`` = the page's ``next_cursor``) or page-number
pagination. A bearer token comes from the Airflow connection (its password) or an
environment variable, never from a file. Connection errors, timeouts and 5xx replies
are retried with exponential backoff; 429 waits for its ``Retry-After``. Any other
4xx stops the source with the server's answer.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

from servicepulse.errors import PermanentError, RetryableError
from servicepulse.settings import HttpConnector, Settings
from servicepulse.sources.landing import LandedFile, land_chunks

log = logging.getLogger(__name__)
MAX_PAGES = 100_000


class ApiError(RetryableError):
    """The API could not be read after the retries (worth another try later)."""


class ApiRejected(ApiError, PermanentError):
    """A reply that retrying cannot fix: a wrong token, a bad request, a page that is
    not a page."""

    # ApiError's retryable class attributes come first in the order of bases.
    exit_code, retryable = PermanentError.exit_code, False


def bearer_token(source: str, connector: HttpConnector,
                 environ: dict[str, str] | None = None) -> str | None:
    from servicepulse.connections import airflow_connection

    environ = os.environ if environ is None else environ
    if connector.connection_id:
        connection = airflow_connection(connector.connection_id)
        if connection is not None and connection.password:
            return connection.password
    return environ.get(connector.token_env or f"SERVICEPULSE_SOURCE_{source.upper()}_TOKEN")


def extract_pages(settings: Settings, source: str, connector: HttpConnector,
                  window_start: datetime | None, window_end: datetime,
                  sleep=None) -> list[LandedFile]:
    import requests

    sleep = sleep or time.sleep
    token = bearer_token(source, connector)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    params: dict[str, str | int] = {
        connector.updated_before_param: window_end.astimezone(UTC).isoformat(),
        "limit": connector.page_size}
    if window_start is not None:
        params[connector.updated_since_param] = window_start.astimezone(UTC).isoformat()
    landed: list[LandedFile] = []
    with requests.Session() as session:
        page_number, cursor = 1, None
        for _ in range(MAX_PAGES):
            query = dict(params)
            if connector.pagination == "cursor" and cursor:
                query["cursor"] = cursor
            elif connector.pagination == "page":
                query["page"] = page_number
            body = _get(session, connector, query, headers, sleep)
            origin = f"{connector.url}?{urlencode(query)}"
            try:
                page = json.loads(body)
                records = page[connector.records_field]
            except (ValueError, KeyError, TypeError):
                raise ApiRejected(f"{origin}: the reply is not a page with a "
                               f"{connector.records_field!r} list: {body[:200]!r}") from None
            landed.append(land_chunks(settings.landing_path, source, origin, [body], ".json",
                                      "json_page", "utf-8"))
            if connector.pagination == "cursor":
                cursor = page.get(connector.next_cursor_field)
                if not cursor:
                    break
            elif len(records) < connector.page_size:
                break
            page_number += 1
        else:
            raise ApiError(f"{connector.url}: more than {MAX_PAGES} pages; is the cursor "
                           "advancing?")
    return landed


def _get(session, connector: HttpConnector, query: dict, headers: dict, sleep) -> bytes:
    import requests

    where = f"{connector.url}?{urlencode(query)}"
    problem = ""
    for attempt in range(1, connector.max_attempts + 1):
        wait = connector.backoff_seconds * 2 ** (attempt - 1)
        try:
            reply = session.get(connector.url, params=query, headers=headers,
                                timeout=connector.timeout_seconds)
        except (requests.ConnectionError, requests.Timeout) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if reply.status_code == 200:
                return reply.content
            problem = f"HTTP {reply.status_code}: {reply.text[:200]}"
            if reply.status_code == 429:
                wait = max(wait, _retry_after(reply.headers.get("Retry-After")))
                if wait > connector.max_retry_after_seconds:
                    raise ApiError(f"{where}: rate limited for {wait:.0f} s, more than "
                                   f"max_retry_after_seconds ({problem})")
            elif reply.status_code < 500:
                hint = " (check the bearer token)" if reply.status_code in (401, 403) else ""
                raise ApiRejected(f"{where}: {problem}{hint}")
        if attempt < connector.max_attempts:
            log.warning("%s: %s; retry %d of %d in %.1f s", where, problem, attempt,
                        connector.max_attempts - 1, wait)
            sleep(wait)
    raise ApiError(f"{where}: gave up after {connector.max_attempts} attempts: {problem}")


def _retry_after(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        return max(float(value), 0.0)
    except ValueError:
        moment = email.utils.parsedate_to_datetime(value)
        return max((moment - datetime.now(UTC)).total_seconds(), 0.0)
