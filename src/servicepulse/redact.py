"""Secrets out of every message: the password part of URLs and DSNs is masked.

Connectors already render their own URLs with the password hidden; this is the
net under everything else that may repeat a rejected value (settings validation,
driver errors, the command line's last line).
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@host  ->  scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*:)"
                           r"(?P<secret>[^@\s'\"]*)(?P<tail>@)")
# password=... / pwd=... / token=... in DSNs and query strings
_KEYWORD_SECRET = re.compile(r"(?P<head>\b(?:password|passwd|pwd|secret|token|api_key|"
                             r"access_token)\s*[=:]\s*)(?P<quote>['\"]?)"
                             r"(?P<secret>[^\s'\"&;,]+)", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every URL password and ``password=`` value replaced by ***."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["tail"], text)
    return _KEYWORD_SECRET.sub(lambda m: m["head"] + m["quote"] + MASK, text)
