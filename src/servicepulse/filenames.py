"""Values from data and configuration (departments, recipients) as file names.

One rule for reports, workbooks, outbox and archive: a value that is already a safe
ASCII name (letters, digits, ``@ . _ -``) is kept as it is, so ordinary names stay
readable and stable; anything else (a ``/``, Chinese, spaces, control characters)
becomes an ASCII slug plus a short hash of the whole value, so two different values
never share a file and none can leave its folder.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SAFE = re.compile(r"[A-Za-z0-9@._-]+")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9@._-]+")
MAX_LENGTH = 120


def safe_name(value: str) -> str:
    """``value`` as one path component: ASCII-safe and collision-proof."""
    if _SAFE.fullmatch(value) and not value.startswith(".") and len(value) <= MAX_LENGTH:
        return value
    # Latin letters with accents keep their base letter; other scripts drop out and
    # the hash tells the values apart.
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    slug = _UNSAFE_RUN.sub("_", ascii_text).strip("._-")[:MAX_LENGTH - 9]
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else digest
