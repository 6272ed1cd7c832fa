"""Who signs in to the corrective-actions app and what each may do.

Users and roles come from settings (``actions.users``); passwords never do: a salted
scrypt hash per user is kept in the warehouse (``actions.user_credentials``), written by
`servicepulse actions set-password`. Sign-in answers the same way, after the same work,
whether the name is unknown or the password wrong: the app does not tell which names
exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

from servicepulse.actions import store
from servicepulse.errors import UserError
from servicepulse.settings import ActionUser, Settings
from servicepulse.warehouse import Warehouse

# scrypt cost (2^15, r 8, p 1: about 32 MiB and 0.1 s per check), the OWASP minimum.
_N, _R, _P = 2 ** 15, 8, 1
_MAX_MEMORY = 64 * 1024 * 1024
MIN_PASSWORD_LENGTH = 10


class PasswordRefused(UserError):
    """The new password is too weak, or the user is not configured."""


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P,
                            maxmem=_MAX_MEMORY, dklen=32)
    encoded_salt, encoded = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${_N}${_R}${_P}${encoded_salt}${encoded}"


def password_matches(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                                  r=int(r), p=int(p), maxmem=_MAX_MEMORY, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


# Checked against when the name is unknown, so that an unknown name costs the same time.
_DECOY = hash_password(os.urandom(16).hex())


def set_password(settings: Settings, warehouse: Warehouse, username: str,
                 password: str) -> None:
    if settings.actions.user(username) is None:
        raise PasswordRefused(f"{username!r} is not in actions.users of {settings.config_file}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRefused(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip().lower() in (username.lower(), "password123", "1234567890"):
        raise PasswordRefused("that password is too easy to guess")
    store.ensure_tables(settings, warehouse)
    store.set_password_hash(settings, warehouse, username, hash_password(password))


def authenticate(settings: Settings, warehouse: Warehouse, username: str,
                 password: str) -> ActionUser | None:
    name = username.strip().lower()
    user = settings.actions.user(name)
    # The same query and the same hash work for every name, configured or not.
    stored = store.password_hash_of(settings, warehouse, name)
    matches = password_matches(password, stored or _DECOY)
    return user if (user is not None and stored is not None and matches) else None


def is_quality_team(user: ActionUser) -> bool:
    return user.role == "quality_team"


def visible_departments(user: ActionUser) -> list[str] | None:
    """The departments whose actions the user sees; None: every department."""
    return None if is_quality_team(user) else list(user.departments)


def may_see(user: ActionUser, action: dict[str, Any]) -> bool:
    return is_quality_team(user) or action["department"] in user.departments


def may_work(user: ActionUser, action: dict[str, Any]) -> bool:
    """Record the cause and measure, mark done: the department's head (and the quality
    team, who may act for a department)."""
    return may_see(user, action) and action["status"] in store.TO_WORK


def may_govern(user: ActionUser) -> bool:
    """Reassign, extend a deadline, reopen: the quality team only."""
    return is_quality_team(user)
