"""Where an alert goes: e-mail through the configured transport, or a group chat's
incoming webhook (WeCom, DingTalk, Feishu/Lark, Slack, Microsoft Teams, or any JSON
endpoint).

Each channel turns an Alert into its vendor's documented payload, posts it and reads
the vendor's answer:

- ``ChannelRateLimited`` (HTTP 429, WeCom errcode 45009, DingTalk 130101, Feishu
  9499/11232): worth another try after a pause (``retry_after`` when the vendor says).
- ``ChannelError``: anything else (a bad signature, an unknown robot, a mail server
  that refused): not retried within this call; the notifier keeps the alert pending.

Webhook URLs and secrets come from the environment or an Airflow connection, never
from the settings file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from servicepulse.errors import PermanentError, RetryableError, UserError

if TYPE_CHECKING:
    from servicepulse.delivery.alert import Alert
    from servicepulse.settings import NotificationChannel, Settings


class ChannelError(PermanentError):
    """The channel refused the alert (bad signature, unknown robot, refused mailbox)."""


class ChannelRateLimited(RetryableError):
    """The channel asks to slow down; another try after a pause may pass."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChannelConfigError(UserError):
    """A channel's URL or secret is missing, or its kind is unknown."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    secret: str | None = None


def endpoint_for(name: str, channel: NotificationChannel,
                 environ: dict[str, str] | None = None) -> Endpoint:
    """The webhook URL and secret: the Airflow connection ``connection_id`` (URL in its
    host or extra "url", secret in its password), else the environment variables
    ``url_env`` / ``secret_env`` (default SERVICEPULSE_WEBHOOK_<NAME>_URL / _SECRET)."""
    environ = os.environ if environ is None else environ
    if channel.connection_id:
        from servicepulse.connections import airflow_connection

        connection = airflow_connection(channel.connection_id)
        if connection is not None:
            extra = getattr(connection, "extra_dejson", None) or {}
            url = extra.get("url") or connection.host or ""
            if url:
                return Endpoint(url, connection.password or None)
    prefix = "SERVICEPULSE_WEBHOOK_" + "".join(
        c if c.isalnum() else "_" for c in name).upper()
    url = environ.get(channel.url_env or f"{prefix}_URL", "")
    secret = environ.get(channel.secret_env or f"{prefix}_SECRET") or None
    if not url:
        raise ChannelConfigError(
            f"notification channel {name!r} ({channel.kind}) has no URL: set "
            f"{channel.url_env or prefix + '_URL'} or the Airflow connection "
            f"{channel.connection_id or '(connection_id)'}")
    return Endpoint(url, secret)


# --- signatures, as each vendor documents them -----------------------------------------

def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk robot: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")),
    URL-encoded, with the timestamp in milliseconds."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu/Lark bot: base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")),
    with the timestamp in seconds."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# --- the channels ----------------------------------------------------------------------

def post_json(url: str, payload: dict[str, Any], timeout: float) -> tuple[int, str]:
    """POST ``payload``; the status and body. 429 raises ChannelRateLimited, any other
    HTTP error or a connection failure ChannelError / ChannelRateLimited (5xx)."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")[:300]
        if exc.code == 429:
            retry_after = exc.headers.get("Retry-After")
            try:
                wait = float(retry_after) if retry_after else None
            except ValueError:
                wait = None
            raise ChannelRateLimited(f"HTTP 429 {text}", wait) from None
        if exc.code >= 500:
            raise ChannelRateLimited(f"HTTP {exc.code} {text}") from None
        raise ChannelError(f"HTTP {exc.code} {text}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise ChannelRateLimited(f"cannot reach the webhook: {exc}") from None


def _json(text: str) -> dict[str, Any]:
    try:
        answer = json.loads(text)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _check_code(answer: dict[str, Any], key: str, rate_limited: set[int], vendor: str,
                text: str) -> None:
    code = answer.get(key, answer.get("StatusCode"))
    if code in (0, None) and (answer or vendor == "generic"):
        return
    message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or text
    if code in rate_limited:
        raise ChannelRateLimited(f"{vendor} {key} {code}: {message}")
    raise ChannelError(f"{vendor} {key} {code}: {message}")


class WebhookChannel:
    def __init__(self, name: str, kind: str, endpoint: Endpoint, timeout: float) -> None:
        self.name, self.kind, self.endpoint, self.timeout = name, kind, endpoint, timeout

    def send(self, alert: Alert) -> str:
        sender = getattr(self, f"_send_{self.kind}")
        return sender(alert)

    def _send_wecom(self, alert: Alert) -> str:
        _, text = post_json(self.endpoint.url, {
            "msgtype": "markdown", "markdown": {"content": alert.markdown()}}, self.timeout)
        _check_code(_json(text), "errcode", {45009}, "WeCom", text)
        return "WeCom: ok"

    def _send_dingtalk(self, alert: Alert) -> str:
        url = self.endpoint.url
        if self.endpoint.secret:
            timestamp = int(time.time() * 1000)
            sign = dingtalk_sign(self.endpoint.secret, timestamp)
            url += ("&" if "?" in url else "?") + f"timestamp={timestamp}&sign={sign}"
        _, text = post_json(url, {"msgtype": "markdown", "markdown": {
            "title": alert.title(), "text": alert.markdown()}}, self.timeout)
        _check_code(_json(text), "errcode", {130101}, "DingTalk", text)
        return "DingTalk: ok"

    def _send_feishu(self, alert: Alert) -> str:
        payload: dict[str, Any] = {"msg_type": "text", "content": {"text": alert.plain()}}
        if self.endpoint.secret:
            timestamp = int(time.time())
            payload.update(timestamp=str(timestamp),
                           sign=feishu_sign(self.endpoint.secret, timestamp))
        _, text = post_json(self.endpoint.url, payload, self.timeout)
        _check_code(_json(text), "code", {9499, 11232}, "Feishu", text)
        return "Feishu: ok"

    def _send_slack(self, alert: Alert) -> str:
        _, text = post_json(self.endpoint.url, {"text": alert.plain()}, self.timeout)
        if text.strip() != "ok":
            raise ChannelError(f"Slack answered {text[:200]!r}")
        return "Slack: ok"

    def _send_teams(self, alert: Alert) -> str:
        # A Teams Workflows webhook ("post to a channel when a webhook request is
        # received"): a message with an Adaptive Card attachment; it answers 202.
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard", "version": "1.4", "body": [
                    {"type": "TextBlock", "text": alert.title(), "weight": "Bolder",
                     "wrap": True,
                     "color": "Attention" if alert.severity == "critical" else "Default"},
                    *({"type": "TextBlock", "text": line, "wrap": True}
                      for line in alert.lines())]}
        status, text = post_json(self.endpoint.url, {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
             "content": card}]}, self.timeout)
        if not 200 <= status < 300:
            raise ChannelError(f"Teams answered HTTP {status} {text[:200]}")
        return "Teams: ok"

    def _send_generic(self, alert: Alert) -> str:
        status, _ = post_json(self.endpoint.url, alert.as_dict(), self.timeout)
        return f"webhook: HTTP {status}"


class EmailChannel:
    """The alert as an e-mail to the audience's addresses, through delivery.transport
    (an .eml in the outbox, or the SMTP server)."""
    kind = "email"

    def __init__(self, name: str, settings: Settings, addresses: list[str]) -> None:
        self.name, self.settings, self.addresses = name, settings, addresses

    def send(self, alert: Alert) -> str:
        from servicepulse.delivery.outbox import build_message
        from servicepulse.delivery.transport import DeliveryError, transport_for

        if not self.addresses:
            raise ChannelConfigError(f"channel {self.name!r}: no e-mail address "
                                     "(delivery.data_team is empty)")
        sender = str(self.settings.delivery.sender)
        message = build_message(sender, [("", a) for a in self.addresses], alert.title(),
                                alert.html(), alert.plain(), identity=alert.dedupe_key)
        transport = transport_for(self.settings)
        stem = alert.stem or alert.dedupe_key  # the outbox makes it a safe file name
        if transport.name == "outbox":  # one file naming every recipient
            return transport.send(message, sender, self.addresses[0], ("alerts",), stem)
        replies, failures = [], []
        for address in self.addresses:
            try:
                replies.append(transport.send(message, sender, address, ("alerts",),
                                              f"{stem}-{address}"))
            except DeliveryError as exc:
                failures.append(f"{address}: {exc}")
        if failures:
            raise ChannelError("e-mail not accepted for " + "; ".join(failures))
        return "; ".join(replies)


def channel_for(settings: Settings, name: str, audience_addresses: list[str],
                environ: dict[str, str] | None = None):
    channels = settings.notifications.channels
    if name not in channels:
        if name == "email":
            return EmailChannel(name, settings, audience_addresses)
        raise ChannelConfigError(f"notification channel {name!r} is not defined under "
                                 "notifications.channels")
    channel = channels[name]
    if channel.kind == "email":
        return EmailChannel(name, settings, [str(a) for a in channel.addresses]
                            or audience_addresses)
    return WebhookChannel(name, channel.kind, endpoint_for(name, channel, environ),
                          settings.notifications.timeout_seconds)
