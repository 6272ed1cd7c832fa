"""Waiting for a resource another process holds: bounded, said once, then a clear error.

The run lock and a DuckDB file being written are both "someone else has it": a
command waits up to ``warehouse.lock_wait_seconds``, tells the person once whom it
waits for, and then gives up with a retryable error naming the holder.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

from servicepulse.errors import RetryableError

T = TypeVar("T")


def wait_while_held(attempt: Callable[[], tuple[T | None, str | None]], limit: float,
                    waiting_for: str, busy: Callable[[str], RetryableError]) -> T:
    """Call ``attempt`` until it succeeds: it returns (result, None), or (None, who holds
    the resource). While held, say once on stderr ``waiting for <waiting_for><who>``;
    after ``limit`` seconds raise ``busy(message)``, the message naming the holder."""
    started = time.monotonic()
    said = False
    while True:
        result, holder = attempt()
        if holder is None:
            return result
        waited = time.monotonic() - started
        if waited >= limit:
            raise busy(holder + (f"; waited {waited:.0f} s (warehouse.lock_wait_seconds)"
                                 if limit else "") + "; run again when it has finished")
        if not said:
            print(f"waiting for {waiting_for}{holder} (up to {limit:.0f} s, "
                  "warehouse.lock_wait_seconds)", file=sys.stderr, flush=True)
            said = True
        time.sleep(min(0.5, max(0.05, limit - waited)))
