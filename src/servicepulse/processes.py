"""Child processes (dbt, Airflow) that never outlive the command that started them.

A child runs in a process group of its own, so that what it starts in turn is found
with it. It dies with its parent even when the parent is killed outright (SIGKILL):
the kernel sends it SIGKILL then (Linux ``PR_SET_PDEATHSIG``). A SIGTERM or SIGINT
to the parent is passed on to the child's whole group, and whatever way the parent
leaves the call (an exception, a timeout), the group is ended before it returns: a
killed `servicepulse build` leaves no dbt holding the warehouse.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

PR_SET_PDEATHSIG = 1
GRACE_SECONDS = 10


# Loaded once in the parent: after fork, the child only calls into it (no dlopen, whose
# lock another thread may have held at the fork).
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(parent: int):
    """A preexec_fn: the child gets SIGKILL when ``parent`` dies."""
    def prepare() -> None:  # runs in the child between fork and exec
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
    return prepare


def run_child(argv: list[str], env: dict[str, str] | None = None,
              cwd: Path | str | None = None,
              timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` to its end and return its output (text), as subprocess.run with
    capture_output=True and check=False, but as a child that cannot outlive us."""
    # preexec_fn only calls prctl (async-signal-safe in effect); process_group=0 makes
    # the child the leader of a new group.
    child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, process_group=0,
                             preexec_fn=die_with_parent(os.getpid()))  # noqa: PLW1509
    with forwarding_signals(child.pid):
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        finally:
            end_group(child)
    return subprocess.CompletedProcess(argv, child.returncode, stdout, stderr)


def end_group(child: subprocess.Popen) -> None:
    """Stop the child's process group: SIGTERM, then SIGKILL after a grace period."""
    for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, GRACE_SECONDS)):
        try:
            os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            break  # the group is gone
        if child.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(wait)
    if child.poll() is None:
        child.kill()
        child.wait()


@contextlib.contextmanager
def forwarding_signals(group: int) -> Iterator[None]:
    """While a child runs, SIGTERM and SIGINT to us go to its whole ``group`` too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def forward(signum, frame):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signum)
        handler = previous.get(signum)
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, forward)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
