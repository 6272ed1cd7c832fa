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

    exit_code = 1
    retryable = False


class UserError(ServicePulseError):
    """The user's to fix: their input or configuration is wrong."""

    exit_code = 2


class PermanentError(ServicePulseError):
    """No retry will mend it; a person must look (the message says where)."""

    exit_code = 1


class RetryableError(ServicePulseError):
    """Temporary: another try later may succeed."""

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


INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as shells report it


def explain_failure(error: BaseException) -> tuple[str, int] | None:
    """One line a person can act on, and the exit code, for an expected failure; None
    for a bug (the caller shows its traceback).

    The project's errors explain themselves. Operating-system trouble that any
    command can meet (a full disk, a missing or unreadable file, a port in use, a
    database that went away) is worded here once, whichever library raised it: the
    cause may sit anywhere in the chain of exceptions (DuckDB reports a full disk as
    an IO error whose text is the OS's).
    """
    import errno

    if isinstance(error, ServicePulseError):
        return str(error), error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", INTERRUPTED_EXIT_CODE
    for cause in _chain(error):
        text = str(cause)
        if (isinstance(cause, OSError) and cause.errno == errno.ENOSPC) or \
                "No space left on device" in text:
            where = f" writing {cause.filename}" if getattr(cause, "filename", None) else ""
            message = (f"no space left on device{where}: free space there and run again "
                       "(what this run wrote was rolled back; raw deliveries are kept) "
                       f"[{_first_line(text)}]")
            return message, RetryableError.exit_code
    detail = _first_line(str(error))
    if isinstance(error, OSError):
        if error.errno == errno.EADDRINUSE:
            message = (f"a port this command needs is in use ({detail}): another run may "
                       "be serving it; wait for it to finish or stop it")
            return message, RetryableError.exit_code
        if isinstance(error, FileNotFoundError):
            return f"no such file: {error.filename or detail}", UserError.exit_code
        if isinstance(error, PermissionError):
            message = (f"permission denied: {error.filename or detail}: give this user "
                       "access to it, or point the settings elsewhere")
            return message, UserError.exit_code
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror or detail}{where}", RetryableError.exit_code
    name = type(error).__name__
    module = type(error).__module__ or ""
    if name == "OutOfMemoryException" and "duckdb" in module:
        message = (f"DuckDB ran out of memory ({detail}): raise "
                   "warehouse.duckdb_memory_limit or free memory, then run again")
        return message, RetryableError.exit_code
    if name in ("OperationalError", "InterfaceError") and module.startswith(
            ("psycopg2", "sqlalchemy")):
        message = f"the database connection failed: {detail}; check the server, run again"
        return message, RetryableError.exit_code
    return None


def _chain(error: BaseException):
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else "no detail"
