"""Real local HTTP servers standing in for each group chat's incoming webhook. Each
checks its vendor's documented payload shape and signature and answers as the vendor
does, including its errors: rate limited (HTTP 429 or the vendor's errcode) and a bad
signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

RATE_LIMITED = {"wecom": {"errcode": 45009, "errmsg": "api freq out of limit"},
                "dingtalk": {"errcode": 130101, "errmsg": "send too fast"},
                "feishu": {"code": 9499, "msg": "too many request"}}
BAD_SIGN = {"dingtalk": {"errcode": 310000, "errmsg": "sign not match"},
            "feishu": {"code": 19021, "msg": "sign match fail or timestamp is not within "
                                              "one hour from current time"}}


class WebhookServer:
    """One vendor's webhook on 127.0.0.1; ``received`` holds every accepted payload."""

    def __init__(self, vendor: str, secret: str | None = None) -> None:
        self.vendor, self.secret = vendor, secret
        self.received: list[dict[str, Any]] = []
        self.requests = 0
        self.rate_limit_next = 0  # answer this many requests as rate limited
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                status, headers, answer = server.answer(body, query)
                data = answer.encode() if isinstance(answer, str) else json.dumps(
                    answer).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        if vendor == "wecom":
            self.url += "?key=robot-key"
        if vendor == "dingtalk":
            self.url += "?access_token=robot-token"

    def answer(self, body: Any, query: dict[str, list[str]]):
        with self.lock:
            self.requests += 1
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                if self.vendor in RATE_LIMITED:
                    return 200, {}, RATE_LIMITED[self.vendor]
                return 429, {"Retry-After": "0"}, "rate_limited"
            problem = self.check(body, query)
            if problem == "bad sign":
                return 200, {}, BAD_SIGN[self.vendor]
            if problem:
                return 400, {}, problem
            self.received.append(body)
        status = 202 if self.vendor == "teams" else 200  # Teams Workflows: 202 Accepted
        return status, {}, {"wecom": {"errcode": 0, "errmsg": "ok"},
                         "dingtalk": {"errcode": 0, "errmsg": "ok"},
                         "feishu": {"code": 0, "msg": "success", "data": {}},
                         "slack": "ok", "teams": "", "generic": {"ok": True}}[self.vendor]

    def check(self, body: Any, query: dict[str, list[str]]) -> str | None:
        """None when the payload is as the vendor documents it; else what is wrong."""
        v = self.vendor
        if v == "wecom":
            ok = body.get("msgtype") == "markdown" and body["markdown"]["content"]
            return None if ok else "bad wecom payload"
        if v == "dingtalk":
            md = body.get("markdown", {})
            if body.get("msgtype") != "markdown" or not (md.get("title") and md.get("text")):
                return "bad dingtalk payload"
            if self.secret:
                timestamp, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
                expected = base64.b64encode(hmac.new(
                    self.secret.encode(), f"{timestamp}\n{self.secret}".encode(),
                    hashlib.sha256).digest()).decode()
                if not timestamp or sign != expected:  # parse_qs has url-decoded it
                    return "bad sign"
            return None
        if v == "feishu":
            if body.get("msg_type") != "text" or not body["content"]["text"]:
                return "bad feishu payload"
            if self.secret:
                timestamp = body.get("timestamp", "")
                expected = base64.b64encode(hmac.new(
                    f"{timestamp}\n{self.secret}".encode(), b"",
                    hashlib.sha256).digest()).decode()
                if not timestamp or body.get("sign") != expected:
                    return "bad sign"
            return None
        if v == "slack":
            return None if isinstance(body.get("text"), str) and body["text"] else \
                "invalid_payload"
        if v == "teams":  # a Workflows webhook: an Adaptive Card attachment
            attachments = body.get("attachments") or [{}]
            card = attachments[0].get("content") or {}
            ok = (body.get("type") == "message" and attachments[0].get("contentType")
                  == "application/vnd.microsoft.card.adaptive"
                  and card.get("type") == "AdaptiveCard" and card.get("body"))
            return None if ok else "bad card"
        ok = {"kind", "what", "interval", "first_error", "log_url", "next_step",
              "severity", "dedupe_key"} <= set(body)
        return None if ok else "bad alert json"

    def __enter__(self) -> Self:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
