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

# Tries come after 20 ms, 40 ms, … then every half second; a wait says whom it waits for
# once it has lasted a second (a brief one, the usual case, says nothing).
FIRST_PAUSE_SECONDS = 0.02
LONGEST_PAUSE_SECONDS = 0.5
QUIET_SECONDS = 1.0


def wait_while_held(attempt: Callable[[], tuple[T | None, str | None]], limit: float,
                    waiting_for: str, busy: Callable[[str], RetryableError]) -> T:
    """Call ``attempt`` until it succeeds: it returns (result, None), or (None, who holds
    the resource). Held for more than a moment, say once on stderr ``waiting for
    <waiting_for><who>``; after ``limit`` seconds raise ``busy(message)``, the message
    naming the holder.

    Most holds are brief (another report task's ledger write or mart read lasts
    milliseconds): the first tries come quickly and quietly, then every half second."""
    started = time.monotonic()
    said = False
    pause = FIRST_PAUSE_SECONDS
    while True:
        result, holder = attempt()
        if holder is None:
            return result
        waited = time.monotonic() - started
        if waited >= limit:
            raise busy(holder + (f"; waited {waited:.0f} s (warehouse.lock_wait_seconds)"
                                 if limit else "") + "; run again when it has finished")
        if not said and waited >= QUIET_SECONDS:
            print(f"waiting for {waiting_for}{holder} (up to {limit:.0f} s, "
                  "warehouse.lock_wait_seconds)", file=sys.stderr, flush=True)
            said = True
        time.sleep(min(pause, max(0.01, limit - waited)))
        pause = min(LONGEST_PAUSE_SECONDS, pause * 2)
