"""What kind of failure an error is, said by its class.

Every module raises its own errors as subclasses of one of three kinds, so the
command line (exit code, one line instead of a traceback) and Airflow (fail at
once, or retry with backoff) decide by the class and never by a list that must
know every module. This module imports nothing of the project's: anything may
import it.

- ``UserError``: the input or configuration is wrong; a person must change it
  (a bad settings file, an unknown period, a source file that breaks its
  contract). Retrying cannot help.
- ``PermanentError``: the run cannot succeed as things stand, though the input
  may be fine (a failed critical data check, a recipient refused for good, a
  send in doubt). Retrying cannot help; a person must look.
- ``RetryableError``: worth another try later (a busy warehouse, an unreachable
  mail server or source system, a full disk once space is freed).

Anything else that escapes is a bug: the command line prints its traceback.
"""

from __future__ import annotations


class ServicePulseError(Exception):
    """Base of every error the project raises on purpose."""

    kind = "error"
    exit_code = 1
    retryable = False


class UserError(ServicePulseError):
    """The user's to fix: their input or configuration is wrong."""

    kind = "user"
    exit_code = 2


class PermanentError(ServicePulseError):
    """No retry will mend it; a person must look (the message says where)."""

    kind = "permanent"
    exit_code = 1


class RetryableError(ServicePulseError):
    """Temporary: another try later may succeed."""

    kind = "retryable"
    exit_code = 75  # EX_TEMPFAIL (sysexits.h): schedulers and shells know it as "try again"
    retryable = True


BUG_EXIT_CODE = 70  # EX_SOFTWARE: an unexpected error, printed with its traceback


def is_retryable(error: BaseException) -> bool:
    """Whether a task that raised ``error`` should be tried again.

    The project's own errors say so by their class. Of the rest, operating-system
    trouble (a lock held, a connection refused, a full disk) may pass; a
    programming error will not.
    """
    if isinstance(error, ServicePulseError):
        return error.retryable
    return isinstance(error, (OSError, TimeoutError, ConnectionError))
